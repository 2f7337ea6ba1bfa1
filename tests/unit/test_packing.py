"""Best-fit-decreasing packing (TRL's, over the whole shard) keeps documents whole, positions restarting, tokens
conserved and fcdist's counts."""

import random

from fcdist.preprocess.packing import length_summary, pack_documents


def make_docs(n, seed=0, mean=5.6, sigma=0.5):
    rng = random.Random(seed)
    docs = []
    for d in range(n):
        length = max(2, int(rng.lognormvariate(mean, sigma)))
        ids = [d * 1000 + t for t in range(length)]  # ids unique per document and position
        labels = [-100] * (length // 2) + ids[length // 2:]
        docs.append((ids, labels))
    return docs


def split_row(row):
    start = 0
    for length in row["doc_lengths"]:
        yield {k: row[k][start:start + length] for k in ("input_ids", "labels", "position_ids")}
        start += length


def test_packed_rows_keep_documents_intact_and_conserve_tokens():
    docs = make_docs(3000)
    rows, stats = pack_documents(docs, 512, "truncate", packing=True)
    # a document whose loss starts past 512 (labels -100 on its first half) is dropped, not packed
    by_first_id = {ids[0]: (ids[:512], labels[:512]) for ids, labels in docs if len(ids) // 2 < 512}
    assert stats.dropped_no_loss == len(docs) - len(by_first_id) > 0
    seen = []
    for row in rows:
        assert len(row["input_ids"]) <= 512
        assert sum(row["doc_lengths"]) == len(row["input_ids"]) == len(row["labels"]) == len(row["position_ids"])
        for piece in split_row(row):
            ids, labels = by_first_id[piece["input_ids"][0]]
            assert piece["input_ids"] == ids and piece["labels"] == labels, "document contiguous and unchanged"
            assert piece["position_ids"] == list(range(len(ids))), "positions restart at every document"
            seen.append(piece["input_ids"][0])
    assert sorted(seen) == sorted(by_first_id), "every document exactly once"
    assert stats.tokens == sum(len(ids) for ids, _ in by_first_id.values()) == sum(len(r["input_ids"]) for r in rows)
    assert stats.truncated == stats.partial_loss == sum(512 < len(ids) and len(ids) // 2 < 512 for ids, _ in docs) > 0
    assert stats.loss_tokens == sum(label != -100 for row in rows for label in row["labels"])
    assert stats.loss_tokens + stats.loss_tokens_lost == sum(label != -100 for _, labels in docs for label in labels)


def test_efficiency_on_realistic_lengths_is_at_least_95_percent():
    _, stats = pack_documents(make_docs(5000, mean=5.7, sigma=0.45), 512, "truncate", packing=True)
    assert stats.efficiency >= 0.95


def test_drop_policy_counts_and_removes_overlong():
    docs = make_docs(500, mean=6.2)
    rows, stats = pack_documents(docs, 512, "drop", packing=True)
    assert stats.dropped == sum(len(ids) > 512 for ids, _ in docs) > 0
    assert sum(len(r["doc_lengths"]) for r in rows) == len(docs) - stats.dropped


def test_unpacked_mode_is_one_document_per_row():
    docs = make_docs(100)
    rows, stats = pack_documents(docs, 512, "truncate", packing=False)
    assert len(rows) == 100 and all(len(r["doc_lengths"]) == 1 for r in rows)
    assert stats.efficiency < 0.8


def test_truncation_that_cuts_every_loss_token_drops_the_document():
    prompt_only = ([1] * 600, [-100] * 590 + [1] * 10)  # loss starts at token 590: nothing survives 512
    cut = (list(range(700)), [-100] * 500 + list(range(500, 700)))  # 12 of its 200 loss tokens survive
    whole = ([7] * 100, [-100] * 90 + [7] * 10)
    rows, stats = pack_documents([prompt_only, cut, whole], 512, "truncate", packing=True)
    assert (stats.dropped_no_loss, stats.truncated, stats.partial_loss, stats.kept) == (1, 1, 1, 2)
    assert (stats.loss_tokens, stats.loss_tokens_lost) == (12 + 10, 10 + 188)
    assert all(any(label != -100 for label in row["labels"]) for row in rows), "no packed row without a loss token"
    assert stats.tokens == 512 + 100 == sum(len(row["input_ids"]) for row in rows)


def test_length_summary_against_max_length():
    summary = length_summary({100: 5, 300: 3, 600: 2}, 512)
    assert summary == {"documents": 10, "over_max_length": 2, "share_over": 0.2, "p50": 100, "p90": 600, "max": 600}


def test_best_fit_decreasing_on_a_known_case():
    # sorted: 7, 5, 5, 3 -> the second 5 fills the bin opened by the first, the 3 fills the 7's bin
    docs = [([length] * length, [length] * length) for length in (7, 5, 3, 5)]
    rows, _ = pack_documents(docs, 10, "truncate", packing=True)
    assert sorted(sorted(row["doc_lengths"]) for row in rows) == [[3, 7], [5, 5]]


def trl_bfd(docs, max_length, strategy="bfd", batch_size=None):
    """TRL's pack_dataset on the same documents: (rows of (document index, position) tags, their labels)."""
    import datasets
    from trl.data_utils import pack_dataset

    tags = [[(d, t) for t in range(len(ids))] for d, (ids, _) in enumerate(docs)]
    dataset = datasets.Dataset.from_dict({"input_ids": [[d * 10_000 + t for d, t in doc] for doc in tags],
                                          "labels": [labels for _, labels in docs]})
    packed = pack_dataset(dataset, max_length, strategy, map_kwargs={"batch_size": batch_size})
    return [[divmod(tag, 10_000) for tag in row] for row in packed["input_ids"]], packed["labels"]


def documents_in_more_than_one_row(rows):
    rows_of = {}
    for r, row in enumerate(rows):
        for doc, _ in row:
            rows_of.setdefault(doc, set()).add(r)
    return sum(len(r) > 1 for r in rows_of.values())


def test_packing_is_trl_bfd_over_the_whole_shard_behind_fcdists_overlong_handling():
    """What pack_dataset alone would change (packing.py's docstring, bench/packing_vs_trl.py): measured against TRL."""
    docs = make_docs(2000, seed=3)
    rows, stats = pack_documents(docs, 512, "truncate", packing=True)
    fitted = [(ids[:512], labels[:512]) for ids, labels in docs if len(ids) // 2 < 512]  # what fcdist packs
    assert stats.dropped_no_loss > 0 and len(fitted) == stats.kept
    whole_shard, _ = trl_bfd(fitted, 512)
    assert stats.rows == len(whole_shard) and documents_in_more_than_one_row(whole_shard) == 0
    assert len(trl_bfd(fitted, 512, batch_size=1000)[0]) > stats.rows, "datasets' default batches pack looser"
    # TRL alone: bfd packs the truncated documents that kept no loss token (rows that train nothing) ...
    trl_rows, trl_labels = trl_bfd(docs, 512)
    assert len(trl_rows) > stats.rows
    assert sum(all(label == -100 for label in labels) for labels in trl_labels) >= stats.dropped_no_loss
    assert all(any(label != -100 for label in row["labels"]) for row in rows)
    # ... and bfd_split splits every overlong document across rows
    split_rows, _ = trl_bfd(docs, 512, "bfd_split")
    assert documents_in_more_than_one_row(split_rows) == sum(len(ids) > 512 for ids, _ in docs) > 0


def test_a_shard_where_nothing_fits_packs_to_an_empty_table_with_every_column():
    for packing in (True, False):
        rows, stats = pack_documents([([1] * 600, [-100] * 600)], 512, "truncate", packing=packing)
        assert (len(rows), stats.dropped_no_loss) == (0, 1)
        assert rows.column_names == ["input_ids", "labels", "position_ids", "doc_lengths"]
