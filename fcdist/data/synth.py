"""Synthetic function-calling rows in the exact xlam-function-calling-60k schema.

    fcdist synth --out data/synth.jsonl --rows 60000 --seed 0

Each row is ``{"id": int, "query": str, "answers": JSON str, "tools": JSON str}``, like the gated hub
dataset, so every stage after this one runs unchanged on either. Rows are built from a catalogue of a few
hundred API functions (domain x verb x object x lookup key, plus stand-alone utilities) with typed,
described parameters. A row offers 1-8 tools and asks for one of four call shapes: simple, multiple
(one call among several tools), parallel (one function called several times) and parallel-multiple.

Like the real data, about half the argument values are not spelled out in the query but follow from it
through fixed mappings a model can learn from the training rows (``synth_mentions``: "for Apple" ->
"AAPL", "a dozen" -> 12, "in Fahrenheit" -> "imperial", "next Friday" -> an ISO date given the date the
query states as today, a city -> its coordinates). Tool docs carry xlam's quirks: most defaults written
as strings ("10", "false"), many "" defaults, example defaults on required parameters, and a few
parameters whose declared type differs from the values the calls give (a numeric ID declared "str").

The catalogue is the same for every seed (train and eval files made with different seeds share one API
set, as splits of the real dataset do); the seed picks the rows. Same seed, byte-identical output.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import string
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fcdist.atomic import atomic_path
from fcdist.data.synth_mentions import CITY_COORDINATES, COORDINATE_PAIRS, MENTIONS, Mention, RowContext

CATALOGUE_SEED = 20240611  # fixes descriptions and defaults of the function catalogue, not the rows
SHAPE_WEIGHTS = {"simple": 0.3, "multiple": 0.18, "parallel": 0.22, "parallel_multiple": 0.3}
PARALLEL_CALLS = {2: 6, 3: 3, 4: 1}  # calls per parallel row -> weight: two calls are the most common, as in xlam
TOOL_COUNT_WEIGHTS = (12, 8, 4, 2, 1, 1, 1, 1)  # for 1..8 tools; sliced from the low end for rows needing several
MAX_TOOLS = len(TOOL_COUNT_WEIGHTS)
OPTIONAL_SHARE = 0.65  # chance that a call states a given optional parameter
MENTION_SHARE = 0.8  # chance that a value with a mapping is implied ("for Apple") rather than spelled ("for AAPL")
CITY_SHARE = 0.6  # chance that a pair of coordinates is given as a city name
# Tool-doc quirks of xlam (measured on real rows, see bench/synth_stats.py):
REQUIRED_DEFAULT_SHARE = 0.85  # required parameters showing an example default
EMPTY_DEFAULT_SHARE = 0.33  # optional parameters whose default is ""
TYPED_DEFAULT_SHARE = 0.15  # defaults kept as typed values; the rest are strings ("10", "false")
TYPE_QUIRKS = {"int": "str", "float": "int"}  # declared type -> the wrong one some functions declare instead
TYPE_QUIRK_SHARE = 0.22  # chance that an int or float parameter of a function is declared with its quirk type
NO_DEFAULT = object()
PROGRESS_MIN_ROWS = 5000  # below this a progress bar is noise
OUTPUT_FORMATS = (".jsonl", ".json", ".parquet")


def _pool(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


CITIES = _pool(
    "Paris|Berlin|London|Tokyo|New York|Los Angeles|Chicago|Toronto|Sydney|Melbourne|Madrid|Barcelona|Rome|"
    "Milan|Amsterdam|Vienna|Prague|Warsaw|Lisbon|Dublin|Oslo|Stockholm|Helsinki|Copenhagen|Seoul|Beijing|"
    "Shanghai|Mumbai|Delhi|Bangalore|Singapore|Bangkok|Jakarta|Manila|Cairo|Nairobi|Lagos|Cape Town|"
    "Mexico City|Buenos Aires|Lima|Bogota|Santiago|Sao Paulo|Rio de Janeiro|Austin|Seattle|Denver|Boston|"
    "Miami|Atlanta|Phoenix|Vancouver|Montreal|Istanbul|Athens|Zurich|Geneva|Munich|Hamburg|Lyon|Osaka|Kyoto|"
    "Dubai|Doha|Tel Aviv|Auckland|Honolulu|Reykjavik|Edinburgh|Manchester|Krakow|Budapest|Bucharest"
)
COUNTRIES = _pool(
    "France|Germany|Japan|Brazil|Canada|Australia|India|Mexico|Italy|Spain|Nigeria|Kenya|Egypt|Argentina|"
    "Sweden|Norway|Poland|Portugal|Ireland|South Korea|Thailand|Vietnam|Chile|Peru|Colombia|Turkey|Greece|"
    "Netherlands|Belgium|Switzerland|Austria|New Zealand|South Africa|Indonesia|Philippines|Morocco"
)
COUNTRY_CODES = _pool("US|GB|DE|FR|JP|BR|CA|AU|IN|MX|IT|ES|NG|KE|SE|NO|PL|PT|IE|KR|TH|CL|TR|NL|CH|ZA|NZ|SG")
LANGS = _pool("en|fr|de|es|it|pt|ja|ko|zh|ar|ru|nl|sv|pl|tr")
FIRST_NAMES = _pool(
    "alice|bob|carla|dmitri|emma|farid|grace|hiro|ines|jamal|kate|liam|mona|nikhil|olga|pedro|quinn|rosa|sam|"
    "tara|umar|vera|wei|xenia|yusuf|zoe|maria|john|lucas|sofia|noah|mia|ethan|ava|leo|nora"
)
HANDLE_SUFFIXES = _pool("dev|travels|codes|eats|fit|art|music|photos|official|news|99|2024|_x|hq|live|daily")
TICKERS = _pool("AAPL|MSFT|GOOGL|AMZN|TSLA|NVDA|META|NFLX|AMD|INTC|ORCL|IBM|UBER|SHOP|SQ|PYPL|DIS|KO|PEP|NKE|BA|JPM|V|MA")
COMPANIES = _pool(
    "Apple|Microsoft|Alphabet|Amazon|Tesla|Nvidia|Netflix|Adobe|Salesforce|Spotify|Airbnb|Shopify|Siemens|"
    "Toyota|Samsung|Sony|Nestle|Unilever|Pfizer|Boeing|Intel|Oracle|Zoom|Snowflake"
)
COIN_SYMBOLS = _pool("BTC|ETH|SOL|ADA|XRP|DOGE|DOT|AVAX|MATIC|LTC|LINK|ATOM|XLM|TRX|BNB")
COIN_IDS = _pool("bitcoin|ethereum|solana|cardano|ripple|dogecoin|polkadot|avalanche-2|chainlink|litecoin|cosmos")
TEAMS = _pool(
    "Arsenal|Chelsea|Liverpool|Manchester City|Real Madrid|Barcelona|Bayern Munich|Juventus|Inter Milan|"
    "PSG|Ajax|Benfica|Lakers|Celtics|Warriors|Bulls|Knicks|Heat|Yankees|Dodgers|Red Sox|Cubs|Patriots|"
    "Cowboys|Packers|Chiefs|Maple Leafs|Canadiens"
)
LEAGUES = _pool("Premier League|La Liga|Serie A|Bundesliga|Ligue 1|Eredivisie|MLS|NBA|NFL|MLB|NHL|Champions League")
ARTISTS = _pool(
    "Taylor Swift|Drake|Adele|Ed Sheeran|Beyonce|The Weeknd|Coldplay|Billie Eilish|Kendrick Lamar|Dua Lipa|"
    "Radiohead|Daft Punk|Rosalia|Bad Bunny|BTS|Arctic Monkeys|Metallica|Norah Jones|Miles Davis|Shakira"
)
GENRES = _pool("rock|pop|jazz|hip-hop|classical|electronic|country|reggae|metal|blues|folk|k-pop|latin|soul")
MOVIES = _pool(
    "Inception|The Matrix|Parasite|Interstellar|Amelie|Spirited Away|The Godfather|Pulp Fiction|Arrival|"
    "Dune|Oppenheimer|Barbie|Coco|Up|Heat|Alien|Jaws|Casablanca|Whiplash|Her|Gravity|Memento|Roma"
)
BOOKS = _pool(
    "Dune|Neuromancer|Beloved|Middlemarch|Frankenstein|Dracula|Emma|Ulysses|Hamlet|The Hobbit|Sapiens|"
    "Educated|Circe|Project Hail Mary|The Road|Atonement|Persuasion|Moby Dick|Jane Eyre|Invisible Cities"
)
AUTHORS = _pool(
    "Toni Morrison|Frank Herbert|Jane Austen|George Orwell|Haruki Murakami|Ursula K. Le Guin|Isabel Allende|"
    "Chimamanda Ngozi Adichie|Kazuo Ishiguro|Margaret Atwood|Italo Calvino|Octavia Butler|Neil Gaiman"
)
JOB_TITLES = _pool(
    "data scientist|software engineer|product manager|nurse|accountant|graphic designer|electrician|"
    "teacher|marketing analyst|mechanical engineer|chef|pharmacist|devops engineer|UX researcher"
)
INDUSTRIES = _pool("healthcare|fintech|retail|logistics|education|energy|gaming|biotech|media|automotive")
CUISINES = _pool("Italian|Japanese|Mexican|Thai|Indian|French|Greek|Korean|Ethiopian|Lebanese|Vietnamese|Spanish")
INGREDIENTS = _pool(
    "tomato|basil|garlic|onion|chicken|tofu|rice|spinach|mushroom|lemon|ginger|salmon|chickpeas|potato|"
    "carrot|cheddar|egg|avocado|lentils|coconut milk|bell pepper|quinoa|shrimp|feta"
)
DISHES = _pool("lasagna|pad thai|ramen|paella|tacos|falafel|butter chicken|risotto|pho|moussaka|bibimbap|shakshuka")
KEYWORDS = _pool(
    "wireless headphones|running shoes|standing desk|coffee grinder|yoga mat|gaming laptop|air fryer|"
    "electric kettle|backpack|mechanical keyboard|smart watch|camping tent|office chair|water bottle"
)
TOPICS = _pool("technology|climate|elections|space|health|economy|sports|science|education|artificial intelligence")
PRODUCT_CATEGORIES = _pool("electronics|books|toys|clothing|garden|kitchen|beauty|sports|automotive|music")
EVENT_CATEGORIES = _pool("concerts|festivals|theatre|sports|conferences|exhibitions|comedy|food")
AIRPORTS = _pool("JFK|LAX|LHR|CDG|FRA|HND|SFO|ORD|DXB|SIN|AMS|MAD|BCN|FCO|SYD|YYZ|GRU|ICN|MUC|IST|BOS|SEA")
AIRLINES = _pool("AA|BA|LH|AF|DL|UA|EK|SQ|QF|KL|IB|TK|NH|AC")
MAKES = _pool("Toyota|Honda|Ford|BMW|Audi|Tesla|Kia|Hyundai|Volkswagen|Subaru|Mazda|Volvo|Nissan|Chevrolet")
CAR_MODELS = _pool("Corolla|Civic|F-150|X5|A4|Model 3|Sportage|Elantra|Golf|Outback|CX-5|XC90|Leaf|Malibu")
GAMES = _pool(
    "Elden Ring|Minecraft|Fortnite|Hades|Stardew Valley|Celeste|Hollow Knight|Overwatch 2|Valorant|"
    "Baldur's Gate 3|Portal 2|Cyberpunk 2077|The Witcher 3|Rocket League"
)
PLATFORMS = _pool("pc|steam|epic-games-store|gog|ps4|ps5|xbox-one|switch|android|ios")
TEXTS = _pool(
    "A man a plan a canal Panama|The quick brown fox jumps over the lazy dog|Hello world|racecar|"
    "Never odd or even|Data science is fun|To be or not to be|OpenAI models write code|level|"
    "The rain in Spain stays mainly in the plain|Practice makes perfect|Was it a car or a cat I saw|"
    "Machine learning is a subset of artificial intelligence|Keep calm and carry on|madam|stats"
)
WORDS = _pool(
    "flower|flow|flight|interview|internet|interval|apple|banana|cherry|listen|silent|enlist|stone|notes|"
    "dusty|study|night|thing|planet|plane|python|pythonic|react|reactive"
)
CURRENCIES = _pool("USD|EUR|GBP|JPY|CAD|AUD|CHF|CNY|INR|MXN|BRL|SEK|NOK|KRW|SGD")
TEMP_UNITS = _pool("celsius|fahrenheit|kelvin")
LENGTH_UNITS = _pool("meters|feet|inches|centimeters|miles|kilometers|yards")
WEIGHT_UNITS = _pool("kilograms|pounds|ounces|grams|stones")


# ---------------------------------------------------------------- value samplers


Sampler = Callable[[random.Random], Any]


def choice(values: Sequence[Any]) -> Sampler:
    return lambda rng: rng.choice(values)


def ints(low: int, high: int) -> Sampler:
    return lambda rng: rng.randint(low, high)


def floats(low: float, high: float, digits: int = 2) -> Sampler:
    return lambda rng: round(rng.uniform(low, high), digits)


def list_of(item: Sampler, min_len: int, max_len: int) -> Sampler:
    return lambda rng: [item(rng) for _ in range(rng.randint(min_len, max_len))]


def distinct_list_of(values: Sequence[Any], min_len: int, max_len: int) -> Sampler:
    return lambda rng: rng.sample(values, rng.randint(min_len, max_len))


def a_date(rng: random.Random) -> str:
    return f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def a_username(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}_{rng.choice(HANDLE_SUFFIXES)}".replace("__", "_")


def an_email(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)}.{rng.choice(FIRST_NAMES)}@{rng.choice(('gmail.com', 'example.org', 'mail.co'))}"


def a_code(alphabet: str, length: int, prefix: str = "") -> Sampler:
    return lambda rng: prefix + "".join(rng.choice(alphabet) for _ in range(length))


def an_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def a_url(rng: random.Random) -> str:
    return f"https://www.{rng.choice(WORDS)}{rng.choice(('.com', '.io', '.org'))}/{rng.choice(WORDS)}/{rng.randint(1, 999)}"


def a_filter_dict(rng: random.Random) -> dict[str, Any]:
    options = {"color": choice(_pool("red|blue|black|white|green")), "size": choice(_pool("S|M|L|XL")),
               "brand": choice(_pool("Nike|Sony|Lego|Bosch|Apple")), "min_stock": ints(1, 50)}
    keys = rng.sample(sorted(options), rng.randint(1, 2))
    return {key: options[key](rng) for key in keys}


# ---------------------------------------------------------------- parameter kinds


@dataclass(frozen=True)
class Kind:
    """One kind of parameter: its xlam name and type, how docs describe it, how queries mention it."""

    name: str
    type_name: str  # xlam-style, without the ", optional" suffix
    descriptions: tuple[str, ...]
    phrases: tuple[str, ...]  # query fragments; "{v}" is the value as text
    sample: Sampler
    default: Any = ""  # what applies when an optional parameter is left out


def kind(name: str, type_name: str, descriptions: str, phrases: str, sample: Sampler, default: Any = "") -> Kind:
    return Kind(name, type_name, _pool(descriptions), _pool(phrases), sample, default)


# Keyed by role; several roles share an xlam name (e.g. "title" of a movie, a book or a game).
KINDS: dict[str, Kind] = {
    "city": kind("city", "str", "The name of the city.|The city to look up, e.g. 'London' or 'Tokyo'.|Name of the city for which data is requested.",
                 "for {v}|in {v}", choice(CITIES)),
    "country": kind("country", "str", "The full English name of the country.|Country name, such as 'Germany'.",
                    "for {v}|in {v}", choice(COUNTRIES)),
    "country_code": kind("country_code", "str", "The ISO 3166-1 alpha-2 country code (e.g., 'US', 'DE').|Two-letter country code.",
                         "for country code {v}|in the {v} market|for the country '{v}'", choice(COUNTRY_CODES), "US"),
    "latitude": kind("latitude", "float", "Latitude of the location in decimal degrees.|The latitude coordinate.",
                     "at latitude {v}|for latitude {v}", floats(-45.0, 65.0, 4), 0.0),
    "longitude": kind("longitude", "float", "Longitude of the location in decimal degrees.|The longitude coordinate.",
                      "longitude {v}|and longitude {v}", floats(-120.0, 150.0, 4), 0.0),
    "zip_code": kind("zip_code", "str", "The 5-digit postal (ZIP) code.|Postal code of the area.",
                     "for ZIP code {v}|around ZIP {v}|in postal code {v}", a_code(string.digits, 5)),
    "date": kind("date", "str", "Date in YYYY-MM-DD format.|The date to query (YYYY-MM-DD); defaults to today.",
                 "on {v}|for the date {v}|for {v}", a_date),
    "start_date": kind("start_date", "str", "Start of the period, formatted YYYY-MM-DD.|The first date (inclusive) in YYYY-MM-DD.",
                       "from {v}|starting {v}|beginning on {v}", a_date),
    "end_date": kind("end_date", "str", "End of the period, formatted YYYY-MM-DD.|The last date (inclusive) in YYYY-MM-DD.",
                     "to {v}|until {v}|through {v}", a_date),
    "check_in": kind("check_in", "str", "Check-in date (YYYY-MM-DD).", "checking in on {v}|arriving {v}", a_date),
    "check_out": kind("check_out", "str", "Check-out date (YYYY-MM-DD).", "checking out on {v}|leaving {v}", a_date),
    "departure_date": kind("departure_date", "str", "Departure date in YYYY-MM-DD format.", "departing on {v}|leaving on {v}", a_date),
    "return_date": kind("return_date", "str", "Return date in YYYY-MM-DD format; leave empty for one-way trips.",
                        "returning on {v}|coming back on {v}", a_date),
    "pickup_date": kind("pickup_date", "str", "Pick-up date (YYYY-MM-DD).", "picking up on {v}|from {v}", a_date),
    "dropoff_date": kind("dropoff_date", "str", "Drop-off date (YYYY-MM-DD).", "dropping off on {v}|until {v}", a_date),
    "days": kind("days", "int", "Number of days to forecast (1-14).|How many days ahead to include.",
                 "for the next {v} days|covering {v} days", ints(1, 14), 3),
    "units": kind("units", "str", "Unit system for the results: 'metric', 'imperial' or 'standard'.|Units of measurement.",
                  "in {v} units|using {v} units", choice(("imperial", "standard", "metric")), "metric"),
    "lang": kind("lang", "str", "Two-letter language code for the response.|Language of the returned text (ISO 639-1).",
                 "in language '{v}'|with language code {v}|in the '{v}' language", choice(LANGS), "en"),
    "limit": kind("limit", "int", "Maximum number of results to return.|The number of items per response.",
                  "limited to {v} results|with a limit of {v}|returning at most {v} items", ints(1, 50), 10),
    "page": kind("page", "int", "Page number of the results, starting at 1.|Which page of results to fetch.",
                 "on page {v}|from page {v} of the results", ints(2, 20), 1),
    "sort_by": kind("sort_by", "str", "Field to sort the results by.|Sort order: 'relevance', 'price', 'rating', 'date' or 'popularity'.",
                    "sorted by {v}|ordered by {v}", choice(("price", "rating", "date", "popularity", "distance")), "relevance"),
    "include_details": kind("include_details", "bool", "Whether to include extended details in the response.",
                            "with full details|including extended details", choice((True,)), False),
    "max_price": kind("max_price", "float", "Maximum price in US dollars.|Upper price limit.",
                      "under {v} dollars|with a maximum price of {v}", floats(20, 900), 1000.0),
    "min_price": kind("min_price", "float", "Minimum price in US dollars.", "above {v} dollars|priced from {v}", floats(50, 500000, 0), 0.0),
    "min_rating": kind("min_rating", "float", "Minimum average user rating (0-5).", "rated at least {v}|with a minimum rating of {v}",
                       floats(2.5, 4.9, 1), 0.0),
    "adults": kind("adults", "int", "Number of adult guests.", "for {v} adults|with {v} guests", ints(2, 6), 1),
    "radius": kind("radius", "int", "Search radius in meters.", "within {v} meters|in a radius of {v} meters",
                   choice((500, 1000, 2000, 3000, 10000, 25000)), 5000),
    "cuisine": kind("cuisine", "str", "Type of cuisine, e.g. 'Italian'.", "serving {v} food|with {v} cuisine|that do {v}", choice(CUISINES)),
    "event_category": kind("category", "str", "Category of events to include.", "in the {v} category|of type '{v}'", choice(EVENT_CATEGORIES)),
    "product_category": kind("category", "str", "Product category to restrict the search to.", "in the {v} category|in {v}",
                             choice(PRODUCT_CATEGORIES)),
    "keyword": kind("keyword", "str", "Search keyword or phrase.|Free-text search terms.", "matching '{v}'|for '{v}'|about '{v}'", choice(KEYWORDS)),
    "topic": kind("topic", "str", "The news topic or category.", "about {v}|on the topic '{v}'", choice(TOPICS)),
    "symbol": kind("symbol", "str", "The stock ticker symbol (e.g., 'AAPL').|Ticker symbol of the company.",
                   "for {v}|for the ticker {v}|of {v}", choice(TICKERS)),
    "company_name": kind("company_name", "str", "Name of the company.", "for {v}|of the company {v}", choice(COMPANIES)),
    "interval": kind("interval", "str", "Time interval between data points: '1m', '5m', '1h', '1d', '1wk' or '1mo'.",
                     "at {v} intervals|with interval {v}", choice(("1m", "5m", "15m", "1h", "1wk", "1mo")), "1d"),
    "quarter": kind("quarter", "int", "Fiscal quarter (1-4).", "for quarter {v}|for Q{v}", ints(1, 4), 1),
    "year": kind("year", "int", "The year to query.|Calendar year, e.g. 2023.", "for {v}|in {v}|for the year {v}", ints(1990, 2024), 2023),
    "season": kind("season", "int", "The season's starting year (e.g., 2022 for 2022/23).", "for the {v} season|in season {v}",
                   ints(2010, 2024), 2023),
    "coin_symbol": kind("symbol", "str", "Cryptocurrency symbol, e.g. 'BTC'.", "for {v}|of {v}", choice(COIN_SYMBOLS)),
    "coin_id": kind("coin_id", "str", "The coin identifier, e.g. 'bitcoin'.", "for the coin '{v}'|for coin id {v}", choice(COIN_IDS)),
    "vs_currency": kind("vs_currency", "str", "Quote currency code in lowercase.", "priced in {v}|against {v}",
                        choice(("eur", "gbp", "jpy", "aud", "cad", "chf")), "usd"),
    "team_name": kind("team", "str", "Name of the team.|The team to look up.", "for {v}|of {v}", choice(TEAMS)),
    "league": kind("league", "str", "Name of the league or competition.", "in the {v}|for the {v}", choice(LEAGUES)),
    "artist": kind("artist", "str", "Name of the artist or band.", "by {v}|for {v}|from the artist {v}", choice(ARTISTS)),
    "genre": kind("genre", "str", "Music genre.", "in the {v} genre|for {v} music", choice(GENRES)),
    "movie_title": kind("title", "str", "Title of the movie.", "for '{v}'|of the movie {v}", choice(MOVIES)),
    "imdb_id": kind("imdb_id", "str", "The IMDb identifier, e.g. 'tt0111161'.", "for IMDb ID {v}|for the title {v}",
                    a_code(string.digits, 7, "tt")),
    "product_id": kind("product_id", "str", "The product identifier (ASIN).", "for product {v}|for item ID {v}",
                       a_code(string.ascii_uppercase + string.digits, 8, "B0")),
    "filters": kind("filters", "Dict[str, Any]", "Additional attribute filters as key-value pairs.",
                    "with filters {v}|filtered by {v}", a_filter_dict, None),
    "username": kind("username", "str", "The account's username (without '@').|Username of the profile.",
                     "for the user '{v}'|for @{v}|of the account {v}", a_username),
    "user_id": kind("user_id", "int", "Numeric ID of the user.", "for user ID {v}|of user {v}", ints(1000, 99999999)),
    "include_replies": kind("include_replies", "bool", "Whether replies are included.", "including replies|with replies included",
                            choice((True,)), False),
    "book_title": kind("title", "str", "Title of the book.", "for '{v}'|of the book {v}", choice(BOOKS)),
    "isbn": kind("isbn", "str", "The 13-digit ISBN.", "for ISBN {v}|with ISBN {v}", a_code(string.digits, 10, "978")),
    "author": kind("author", "str", "Full name of the author.", "by {v}|written by {v}", choice(AUTHORS)),
    "job_title": kind("job_title", "str", "Job title or keywords.", "for {v} positions|for the role '{v}'", choice(JOB_TITLES)),
    "experience_years": kind("experience_years", "int", "Years of professional experience.", "with {v} years of experience",
                             ints(1, 25), 0),
    "remote_only": kind("remote_only", "bool", "Only return remote positions.", "for remote roles only|restricted to remote jobs",
                        choice((True,)), False),
    "industry": kind("industry", "str", "Industry sector.", "in the {v} industry|in {v}", choice(INDUSTRIES)),
    "ingredients": kind("ingredients", "List[str]", "List of ingredients to use.", "using {v}|with the ingredients {v}",
                        distinct_list_of(INGREDIENTS, 2, 4)),
    "dish_name": kind("dish", "str", "Name of the dish.", "for {v}|for the dish '{v}'", choice(DISHES)),
    "diet": kind("diet", "str", "Dietary restriction, e.g. 'vegan' or 'keto'.", "that are {v}|suitable for a {v} diet",
                 choice(("vegan", "vegetarian", "keto", "paleo", "gluten-free"))),
    "max_calories": kind("max_calories", "int", "Maximum calories per serving.", "under {v} calories|with at most {v} calories",
                         ints(200, 750), 800),
    "bedrooms": kind("bedrooms", "int", "Minimum number of bedrooms.", "with at least {v} bedrooms|with {v} bedrooms", ints(2, 5), 1),
    "vin": kind("vin", "str", "The 17-character vehicle identification number.", "for VIN {v}|with VIN {v}",
                a_code("ABCDEFGHJKLMNPRSTUVWXYZ0123456789", 17)),
    "make": kind("make", "str", "Vehicle manufacturer.", "for a {v}|made by {v}", choice(MAKES)),
    "car_model": kind("model", "str", "Vehicle model name.", "model {v}|of model {v}", choice(CAR_MODELS)),
    "platform": kind("platform", "str", "Platform, e.g. 'pc', 'steam', 'ps5'.", "on {v}|for the {v} platform", choice(PLATFORMS), "pc"),
    "game_title": kind("title", "str", "Title of the game.", "for '{v}'|for the game {v}", choice(GAMES)),
    "giveaway_type": kind("type", "str", "The type of giveaways to retrieve (e.g., game, loot, beta).",
                          "of type {v}|for {v} giveaways", choice(("loot", "beta")), "game"),
    "flight_number": kind("flight_number", "str", "Airline code followed by the flight number, e.g. 'LH400'.", "for flight {v}",
                          lambda rng: rng.choice(AIRLINES) + str(rng.randint(10, 9999))),
    "origin": kind("origin", "str", "IATA code of the departure airport.", "from {v}|leaving from {v}", choice(AIRPORTS)),
    "destination": kind("destination", "str", "IATA code of the arrival airport.", "to {v}|going to {v}", choice(AIRPORTS)),
    "cabin_class": kind("cabin_class", "str", "Cabin class: economy, premium_economy, business or first.", "in {v} class|flying {v}",
                        choice(("premium_economy", "business", "first")), "economy"),
    "max_stops": kind("max_stops", "int", "Maximum number of stops.", "with at most {v} stops", ints(0, 1), 2),
    "car_type": kind("car_type", "str", "Vehicle class, e.g. 'compact' or 'suv'.", "for a {v} car|of type {v}",
                     choice(("compact", "suv", "van", "luxury", "convertible"))),
    # utility parameters
    "int_numbers": kind("numbers", "List[int]", "A list of integers.|The input list of integers.", "{v}|of the numbers {v}|for the list {v}",
                        list_of(ints(-50, 200), 3, 8)),
    "float_numbers": kind("numbers", "List[float]", "A list of numbers.", "{v}|of the values {v}|for {v}", list_of(floats(0, 100, 1), 3, 7)),
    "number": kind("number", "int", "The integer to check.", "{v}|the number {v}", ints(2, 9999)),
    "n": kind("n", "int", "A non-negative integer.|The count n.", "for n = {v}|for {v}|of {v}", ints(3, 30)),
    "a": kind("a", "int", "The first integer.", "{v}", ints(2, 500)),
    "b": kind("b", "int", "The second integer.", "and {v}", ints(2, 500)),
    "principal": kind("principal", "float", "The loan or investment principal.", "for a principal of {v}|on {v} dollars",
                      floats(1000, 500000, 0)),
    "annual_rate": kind("annual_rate", "float", "Annual interest rate as a percentage.", "at {v} percent|with an annual rate of {v}%",
                        floats(1, 12, 2)),
    "years_term": kind("years", "int", "Term in years.", "over {v} years|for {v} years", ints(1, 30)),
    "compounds_per_year": kind("compounds_per_year", "int", "How many times interest compounds per year.",
                               "compounded {v} times a year", choice((1, 2, 4, 365)), 12),
    "weight_kg": kind("weight_kg", "float", "Body weight in kilograms.", "with a weight of {v} kg|weighing {v} kg", floats(40, 130, 1)),
    "height_cm": kind("height_cm", "float", "Height in centimeters.", "and a height of {v} cm|at {v} cm tall", floats(145, 205, 1)),
    "amount": kind("amount", "float", "The amount of money to convert.", "{v}", floats(1, 10000)),
    "from_currency": kind("from_currency", "str", "ISO 4217 code of the source currency.", "from {v}", choice(CURRENCIES)),
    "to_currency": kind("to_currency", "str", "ISO 4217 code of the target currency.", "to {v}|into {v}", choice(CURRENCIES)),
    "value": kind("value", "float", "The value to convert.", "{v}", floats(-40, 500, 1)),
    "from_temp": kind("from_unit", "str", "Unit of the input value.", "from {v}|in {v}", choice(TEMP_UNITS)),
    "to_temp": kind("to_unit", "str", "Unit to convert to.", "to {v}|into {v}", choice(TEMP_UNITS)),
    "from_length": kind("from_unit", "str", "Unit of the input length.", "from {v}|in {v}", choice(LENGTH_UNITS)),
    "to_length": kind("to_unit", "str", "Target length unit.", "to {v}|into {v}", choice(LENGTH_UNITS)),
    "from_weight": kind("from_unit", "str", "Unit of the input weight.", "from {v}|in {v}", choice(WEIGHT_UNITS)),
    "to_weight": kind("to_unit", "str", "Target weight unit.", "to {v}|into {v}", choice(WEIGHT_UNITS)),
    "bill_amount": kind("bill_amount", "float", "Total bill before tip.", "on a bill of {v}|for a {v} dollar bill", floats(5, 400)),
    "tip_percentage": kind("tip_percentage", "int", "Tip as a percentage.", "at {v} percent|with a {v}% tip", ints(5, 30), 15),
    "price": kind("price", "float", "Original price.", "on a price of {v}|for an item costing {v}", floats(5, 2000)),
    "discount_percent": kind("discount_percent", "float", "Discount as a percentage.", "with {v}% off|at a {v} percent discount",
                             floats(5, 70, 1)),
    "lat1": kind("lat1", "float", "Latitude of the first point.", "from latitude {v}", floats(-45, 65, 4)),
    "lon1": kind("lon1", "float", "Longitude of the first point.", "longitude {v}", floats(-120, 150, 4)),
    "lat2": kind("lat2", "float", "Latitude of the second point.", "to latitude {v}", floats(-45, 65, 4)),
    "lon2": kind("lon2", "float", "Longitude of the second point.", "longitude {v}", floats(-120, 150, 4)),
    "password_length": kind("length", "int", "Length of the password.", "of length {v}|with {v} characters", ints(8, 40), 12),
    "include_symbols": kind("include_symbols", "bool", "Whether to include special symbols.", "with symbols|including special characters",
                            choice((True,)), False),
    "text": kind("text", "str", "The input text.|The string to process.", "'{v}'|of the text '{v}'|for \"{v}\"", choice(TEXTS)),
    "word1": kind("word1", "str", "The first word.", "'{v}'", choice(WORDS)),
    "word2": kind("word2", "str", "The second word.", "and '{v}'", choice(WORDS)),
    "target": kind("target", "int", "The value to search for.", "for the target {v}|looking for {v}", ints(-50, 200)),
    "birth_date": kind("birth_date", "str", "Birth date in YYYY-MM-DD format.", "born on {v}|with birth date {v}", a_date),
    "radius_value": kind("radius", "float", "Radius of the circle.", "with radius {v}|of radius {v}", floats(0.5, 100, 2)),
    "base": kind("base", "float", "Length of the base.", "with base {v}", floats(1, 100, 1)),
    "height": kind("height", "float", "Height of the triangle.", "and height {v}", floats(1, 100, 1)),
    "start_value": kind("start_value", "float", "Initial value of the investment.", "from {v}|starting at {v}", floats(1000, 100000, 0)),
    "end_value": kind("end_value", "float", "Final value of the investment.", "to {v}|ending at {v}", floats(1000, 300000, 0)),
    "words": kind("words", "List[str]", "A list of words.", "{v}|of the words {v}", distinct_list_of(WORDS, 2, 5)),
    "target_language": kind("target_language", "str", "Language code to translate into.", "into {v}|to language {v}", choice(LANGS)),
    "source_language": kind("source_language", "str", "Language code of the input; detected when empty.", "from {v}", choice(LANGS),
                            "auto"),
    "url": kind("url", "str", "The URL to process.", "{v}|for {v}", a_url),
    "ip_address": kind("ip", "str", "The IPv4 address to look up.", "{v}|for the IP {v}", an_ip),
    "email": kind("email", "str", "The email address to check.", "{v}|for {v}", an_email),
    "descending": kind("descending", "bool", "Sort in descending order if true.", "in descending order|from largest to smallest",
                       choice((True,)), False),
}


# ---------------------------------------------------------------- the function catalogue


@dataclass(frozen=True)
class Param:
    role: str  # the key in KINDS (several roles share an xlam name)
    required: bool

    @property
    def kind(self) -> Kind:
        return KINDS[self.role]

    @property
    def mention(self) -> Mention | None:
        return MENTIONS.get(self.role)


@dataclass(frozen=True)
class Function:
    """One API in the catalogue: its xlam tool dict and how queries ask for it."""

    name: str
    domain: str
    tool: dict
    params: tuple[Param, ...]
    actions: tuple[str, ...]  # infinitive phrases: "get the weather forecast"
    noun: str  # what it returns, for "Show me {noun} ..." phrasings

    @functools.cached_property
    def tool_json(self) -> str:
        """The tool dict as JSON, encoded once: rows join these (json.dumps of the list gives the same text)."""
        return json.dumps(self.tool)


@dataclass(frozen=True)
class Domain:
    """An API family; its functions are verbs x objects x lookup keys."""

    name: str
    apis: tuple[str, ...]
    verbs: tuple[str, ...]
    objects: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...]  # (snake, noun, required, optional)
    lookups: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name suffix, described as, required kinds)


VERB_ACTIONS = {
    "get": ("get", "fetch", "retrieve", "look up"),
    "fetch": ("fetch", "get", "pull"),
    "search": ("search for", "find", "look for"),
    "find": ("find", "search for", "locate"),
    "list": ("list", "show", "give me"),
}
VERB_DOC = {"get": "Retrieves", "fetch": "Fetches", "search": "Searches for", "find": "Finds", "list": "Lists"}

DOMAINS = (
    Domain("weather", _pool("OpenWeatherMap|WeatherAPI|Meteostat|Tomorrow.io"), ("get", "fetch"),
           (("weather_forecast", "the weather forecast", (), ("days", "units", "lang")),
            ("current_weather", "the current weather", (), ("units", "lang")),
            ("air_quality", "the air quality index", (), ("include_details",)),
            ("uv_index", "the UV index", (), ("date",)),
            ("sunrise_sunset", "the sunrise and sunset times", (), ("date",)),
            ("historical_weather", "the historical weather", ("date",), ("units",))),
           (("by_city", "city name", ("city",)), ("by_coordinates", "pair of coordinates", ("latitude", "longitude")),
            ("by_zip_code", "ZIP code", ("zip_code",)))),
    Domain("travel", _pool("Booking.com|TripAdvisor|Expedia|Yelp|Skyscanner"), ("search", "find"),
           (("hotels", "hotels", ("check_in", "check_out"), ("adults", "max_price", "min_rating", "sort_by")),
            ("restaurants", "restaurants", (), ("cuisine", "radius", "min_rating", "limit")),
            ("attractions", "tourist attractions", (), ("limit", "lang")),
            ("car_rentals", "car rentals", ("pickup_date", "dropoff_date"), ("car_type",)),
            ("events", "local events", (), ("start_date", "event_category", "limit"))),
           (("by_city", "city", ("city",)), ("near_coordinates", "location given as coordinates", ("latitude", "longitude")))),
    Domain("flights", _pool("Skyscanner|Amadeus|AviationStack|FlightAware"), ("search", "find"),
           (("flights", "flights", ("departure_date",), ("return_date", "adults", "cabin_class", "max_stops")),
            ("cheapest_fares", "the cheapest fares", (), ("cabin_class", "limit")),
            ("flight_routes", "direct flight routes", (), ("limit",))),
           (("", "origin and destination airport", ("origin", "destination")),
            ("between_airports", "airport pair", ("origin", "destination")))),
    Domain("finance", _pool("Yahoo Finance|Alpha Vantage|Twelve Data|Polygon.io|Finnhub"), ("get", "fetch"),
           (("stock_quote", "the stock quote", (), ()),
            ("stock_history", "the historical stock prices", ("start_date", "end_date"), ("interval",)),
            ("company_profile", "the company profile", (), ("lang",)),
            ("earnings_report", "the earnings report", (), ("quarter", "year")),
            ("dividend_history", "the dividend history", (), ("limit",)),
            ("analyst_ratings", "the analyst ratings", (), ("limit", "sort_by")),
            ("financial_news", "the latest financial news", (), ("limit", "lang"))),
           (("", "stock ticker", ("symbol",)), ("by_company", "company name", ("company_name",)))),
    Domain("crypto", _pool("CoinGecko|CoinMarketCap|Binance|Kraken"), ("get", "fetch"),
           (("crypto_price", "the current price", (), ("vs_currency",)),
            ("crypto_market_data", "the market data", (), ("vs_currency", "include_details")),
            ("crypto_ohlc", "the OHLC candles", ("start_date",), ("interval", "vs_currency")),
            ("crypto_news", "the latest news", (), ("limit", "lang"))),
           (("", "coin symbol", ("coin_symbol",)), ("by_coin_id", "coin identifier", ("coin_id",)))),
    Domain("sports", _pool("API-Football|SportsData.io|TheSportsDB|ESPN"), ("get", "fetch"),
           (("fixtures", "the upcoming fixtures", (), ("limit",)),
            ("match_results", "the recent match results", (), ("date", "limit")),
            ("standings", "the standings", ("season",), ()),
            ("top_scorers", "the top scorers", ("season",), ("limit",)),
            ("injury_report", "the injury report", (), ("include_details",))),
           (("by_team", "team name", ("team_name",)), ("by_league", "league name", ("league",)))),
    Domain("music", _pool("Spotify|Deezer|Last.fm|Genius|Songkick"), ("get", "search"),
           (("top_tracks", "the top tracks", (), ("limit", "country_code")),
            ("albums", "the albums", (), ("limit", "sort_by")),
            ("concerts", "upcoming concerts", (), ("city", "limit")),
            ("similar_artists", "similar artists", (), ("limit",)),
            ("playlists", "playlists", (), ("limit", "lang"))),
           (("by_artist", "artist", ("artist",)), ("by_genre", "music genre", ("genre",)))),
    Domain("movies", _pool("IMDb|TMDB|OMDb|Rotten Tomatoes|JustWatch"), ("get", "search"),
           (("movie_details", "the movie details", (), ("lang", "include_details")),
            ("cast", "the cast list", (), ("limit",)),
            ("movie_reviews", "the reviews", (), ("limit", "page", "sort_by")),
            ("streaming_availability", "the streaming availability", (), ("country_code",)),
            ("box_office", "the box office figures", (), ())),
           (("by_title", "movie title", ("movie_title",)), ("by_imdb_id", "IMDb identifier", ("imdb_id",)))),
    Domain("shopping", _pool("Amazon|eBay|Walmart|AliExpress|Etsy"), ("search", "get"),
           (("products", "products", (), ("product_category", "max_price", "sort_by", "limit", "filters")),
            ("product_reviews", "product reviews", (), ("limit", "min_rating", "page")),
            ("price_history", "the price history", (), ("start_date",)),
            ("product_offers", "the current offers", (), ("country_code", "filters")),
            ("shipping_options", "the shipping options", ("zip_code",), ())),
           (("by_keyword", "search keyword", ("keyword",)), ("by_product_id", "product identifier", ("product_id",)))),
    Domain("social", _pool("Instagram|TikTok|Twitter|Reddit|Twitch"), ("get", "fetch"),
           (("user_profile", "the profile", (), ()),
            ("followers", "the followers", (), ("limit",)),
            ("recent_posts", "the recent posts", (), ("limit", "include_replies")),
            ("media_posts", "the media posts", (), ("limit", "page")),
            ("user_stories", "the stories", (), ())),
           (("by_username", "username", ("username",)), ("by_user_id", "numeric user ID", ("user_id",)))),
    Domain("news", _pool("NewsAPI|GNews|The Guardian|Bing News"), ("get", "search"),
           (("headlines", "the top headlines", (), ("lang", "limit", "page")),
            ("news_articles", "news articles", (), ("start_date", "sort_by", "limit")),
            ("trending_stories", "trending stories", (), ("limit",)),
            ("breaking_news", "breaking news", (), ("lang",))),
           (("by_country", "country code", ("country_code",)), ("by_topic", "topic", ("topic",)))),
    Domain("real_estate", _pool("Zillow|Realtor.com|Redfin|Idealista"), ("search", "get"),
           (("properties_for_sale", "properties for sale", (), ("min_price", "max_price", "bedrooms", "limit")),
            ("rental_listings", "rental listings", (), ("max_price", "bedrooms", "page")),
            ("home_value_estimates", "home value estimates", (), ("include_details",)),
            ("recently_sold_homes", "recently sold homes", (), ("limit", "sort_by"))),
           (("by_city", "city", ("city",)), ("by_zip_code", "ZIP code", ("zip_code",)))),
    Domain("jobs", _pool("LinkedIn|Indeed|Glassdoor|JSearch"), ("search", "find"),
           (("job_postings", "job postings", ("job_title",), ("remote_only", "limit", "page")),
            ("salary_estimates", "salary estimates", ("job_title",), ("experience_years",)),
            ("companies_hiring", "companies that are hiring", (), ("industry", "limit"))),
           (("by_city", "city", ("city",)), ("by_country", "country", ("country",)))),
    Domain("food", _pool("Spoonacular|Edamam|TheMealDB|Tasty"), ("search", "find", "get"),
           (("recipes", "recipes", (), ("diet", "max_calories", "limit")),
            ("nutrition_facts", "the nutrition facts", (), ("include_details",)),
            ("wine_pairings", "wine pairings", (), ("max_price",))),
           (("by_ingredients", "list of ingredients", ("ingredients",)), ("by_dish", "dish name", ("dish_name",)),
            ("by_cuisine", "cuisine", ("cuisine",)))),
    Domain("books", _pool("Open Library|Google Books|Goodreads"), ("get", "search"),
           (("book_details", "the book details", (), ("lang",)),
            ("book_reviews", "the book reviews", (), ("limit", "sort_by")),
            ("book_editions", "the editions", (), ("limit",)),
            ("similar_books", "similar books", (), ("limit",))),
           (("by_title", "book title", ("book_title",)), ("by_isbn", "ISBN", ("isbn",)), ("by_author", "author", ("author",)))),
    Domain("geography", _pool("REST Countries|GeoDB Cities|Nager.Date|World Bank"), ("get", "fetch"),
           (("country_info", "the country information", (), ("lang",)),
            ("population_data", "the population data", (), ("year",)),
            ("time_zones", "the time zones", (), ()),
            ("public_holidays", "the public holidays", ("year",), ()),
            ("neighbouring_countries", "the neighbouring countries", (), ("include_details",))),
           (("by_country_code", "country code", ("country_code",)), ("by_country_name", "country name", ("country",)))),
    Domain("vehicles", _pool("NHTSA|CarQuery|Edmunds"), ("get", "fetch"),
           (("vehicle_specs", "the vehicle specifications", (), ()),
            ("fuel_economy", "the fuel economy", (), ("units",)),
            ("vehicle_recalls", "the safety recalls", (), ("limit",))),
           (("by_vin", "VIN", ("vin",)), ("by_make_model", "make, model and year", ("make", "car_model", "year")))),
    Domain("gaming", _pool("GamerPower|RAWG|Steam|IGDB|CheapShark"), ("get", "list"),
           (("live_giveaways", "the live giveaways", (), ("giveaway_type",)),
            ("game_deals", "the current game deals", (), ("max_price", "sort_by")),
            ("game_details", "the game details", (), ("lang",)),
            ("player_counts", "the player counts", (), ())),
           (("by_platform", "platform", ("platform",)), ("by_title", "game title", ("game_title",)))),
)

# name, noun, actions, required kinds, optional kinds, description
UTILITIES = (
    ("calculate_loan_payment", "the monthly loan payment", ("calculate the monthly loan payment", "compute the monthly payment"),
     ("principal", "annual_rate", "years_term"), (), "Calculates the monthly payment of a fixed-rate amortizing loan."),
    ("calculate_compound_interest", "the compound interest", ("calculate the compound interest", "work out the final balance"),
     ("principal", "annual_rate", "years_term"), ("compounds_per_year",), "Calculates the final amount of an investment with compound interest."),
    ("calculate_bmi", "the BMI", ("calculate the BMI", "compute the body mass index"), ("weight_kg", "height_cm"), (),
     "Calculates the Body Mass Index (BMI) from weight and height."),
    ("calculate_average", "the average", ("calculate the average", "compute the mean"), ("float_numbers",), (),
     "Calculates the arithmetic mean of a list of numbers."),
    ("calculate_median", "the median", ("calculate the median", "find the median"), ("int_numbers",), (),
     "Calculates the median of a list of integers."),
    ("calculate_standard_deviation", "the standard deviation", ("calculate the standard deviation", "compute the standard deviation"),
     ("float_numbers",), (), "Calculates the standard deviation of a list of numbers."),
    ("find_max_number", "the largest number", ("find the maximum", "get the largest value"), ("int_numbers",), (),
     "Finds the largest number in a list."),
    ("sort_numbers", "the sorted list", ("sort the numbers", "sort"), ("int_numbers",), ("descending",), "Sorts a list of numbers."),
    ("find_duplicate_numbers", "the duplicates", ("find the duplicates", "detect repeated values"), ("int_numbers",), (),
     "Finds the numbers that occur more than once in a list."),
    ("find_missing_number", "the missing number", ("find the missing number", "identify the missing number"), ("int_numbers",), (),
     "Finds the missing number in a list of integers from 0 to n."),
    ("binary_search", "the index of the target", ("binary search", "find the index"), ("int_numbers", "target"), (),
     "Performs binary search on a sorted list to find the index of a target value."),
    ("is_prime", "whether the number is prime", ("check the primality of", "test whether it is prime:"), ("number",), (),
     "Checks if a number is prime."),
    ("sum_of_digits", "the digit sum", ("compute the sum of digits of", "add up the digits of"), ("number",), (),
     "Calculates the sum of the digits of an integer."),
    ("calculate_factorial", "the factorial", ("calculate the factorial", "compute the factorial"), ("n",), (),
     "Calculates the factorial of a non-negative integer."),
    ("fibonacci_numbers", "the Fibonacci numbers", ("generate the Fibonacci numbers", "list the first Fibonacci numbers"), ("n",), (),
     "Generates the first n Fibonacci numbers."),
    ("greatest_common_divisor", "the GCD", ("compute the greatest common divisor of", "find the GCD of"), ("a", "b"), (),
     "Computes the greatest common divisor (GCD) of two non-negative integers."),
    ("least_common_multiple", "the LCM", ("compute the least common multiple of", "find the LCM of"), ("a", "b"), (),
     "Computes the least common multiple (LCM) of two positive integers."),
    ("is_leap_year", "whether it is a leap year", ("check if it is a leap year", "tell me whether it is a leap year"), ("year",), (),
     "Checks if a year is a leap year."),
    ("convert_currency", "the converted amount", ("convert", "exchange"), ("amount", "from_currency", "to_currency"), (),
     "Converts an amount between currencies using the latest exchange rates."),
    ("convert_temperature", "the converted temperature", ("convert the temperature", "convert"), ("value", "from_temp", "to_temp"), (),
     "Converts a temperature between Celsius, Fahrenheit and Kelvin."),
    ("convert_length", "the converted length", ("convert the length", "convert"), ("value", "from_length", "to_length"), (),
     "Converts a length between metric and imperial units."),
    ("convert_weight", "the converted weight", ("convert the weight", "convert"), ("value", "from_weight", "to_weight"), (),
     "Converts a weight between units."),
    ("calculate_tip", "the tip", ("calculate the tip", "work out the tip"), ("bill_amount",), ("tip_percentage",),
     "Calculates the tip for a bill."),
    ("calculate_discount", "the discounted price", ("calculate the discounted price", "work out the sale price"),
     ("price", "discount_percent"), (), "Calculates the final price after a percentage discount."),
    ("calculate_distance", "the distance", ("calculate the distance", "compute the great-circle distance"),
     ("lat1", "lon1", "lat2", "lon2"), ("units",), "Calculates the great-circle distance between two points on Earth."),
    ("generate_password", "a random password", ("generate a password", "create a random password"), (),
     ("password_length", "include_symbols"), "Generates a random password."),
    ("is_palindrome", "whether the text is a palindrome", ("check if this is a palindrome:", "tell me whether it's a palindrome:"),
     ("text",), (), "Checks if a string is a palindrome, ignoring case and non-alphanumeric characters."),
    ("reverse_string", "the reversed text", ("reverse the string", "reverse"), ("text",), (), "Reverses the characters of a string."),
    ("count_vowels", "the vowel count", ("count the vowels", "count vowels"), ("text",), (), "Counts the vowels in a string."),
    ("word_frequency", "the word frequencies", ("compute the word frequency", "count each word"), ("text",), (),
     "Calculates the frequency of each word in a text."),
    ("count_words", "the word count", ("count the words", "get the word count"), ("text",), (), "Counts the words in a text."),
    ("is_anagram", "whether the words are anagrams", ("check if these are anagrams:", "tell me if these are anagrams:"),
     ("word1", "word2"), (), "Checks whether two words are anagrams of each other."),
    ("longest_common_prefix", "the longest common prefix", ("find the longest common prefix", "get the common prefix"), ("words",), (),
     "Finds the longest common prefix among a list of strings."),
    ("calculate_age", "the age", ("calculate the age of someone", "work out how old someone is"), ("birth_date",), (),
     "Calculates the age in years from a birth date."),
    ("days_between_dates", "the number of days", ("count the days", "compute the days between"), ("start_date", "end_date"), (),
     "Calculates the number of days between two dates."),
    ("circle_area", "the area of the circle", ("calculate the area of a circle", "compute the circle's area"), ("radius_value",), (),
     "Computes the area of a circle given its radius."),
    ("triangle_area", "the area of the triangle", ("calculate the area of a triangle", "compute the triangle area"),
     ("base", "height"), (), "Computes the area of a triangle given its base and height."),
    ("calculate_cagr", "the CAGR", ("calculate the CAGR", "compute the compound annual growth rate"),
     ("start_value", "end_value", "years_term"), (), "Calculates the Compound Annual Growth Rate (CAGR) of an investment."),
    ("translate_text", "the translation", ("translate", "translate the text"), ("text", "target_language"), ("source_language",),
     "Translates text into a target language."),
    ("detect_language", "the language", ("detect the language", "identify the language"), ("text",), (),
     "Detects the language of a text."),
    ("shorten_url", "a short link", ("shorten the URL", "create a short link"), ("url",), (), "Creates a shortened URL."),
    ("ip_geolocation", "the IP location", ("geolocate the IP address", "locate"), ("ip_address",), (),
     "Retrieves the approximate location of an IPv4 address."),
    ("validate_email", "whether the email is valid", ("validate the email", "check the email address"), ("email",), (),
     "Validates an email address's syntax and checks its domain."),
)

# Stock API-doc sentences: real xlam descriptions vary from one line to a paragraph, which sets row length.
DOC_SENTENCES = _pool(
    "The response is returned as JSON and includes metadata such as timestamps and source identifiers.|"
    "Results are cached for up to five minutes to reduce load on upstream providers.|"
    "This endpoint supports pagination for large result sets.|"
    "Useful for dashboards, chat assistants and planning applications.|"
    "Rate limits apply: at most 60 requests per minute per API key.|"
    "The response includes both raw values and human-readable summaries.|"
    "Text fields are localized according to the requested language where translations exist.|"
    "Historical coverage may be incomplete for some regions or older records.|"
    "Invalid or unknown identifiers return an empty result instead of an error.|"
    "All monetary values are reported in the account's default currency unless stated otherwise.|"
    "Data is aggregated from several public and licensed sources and normalized into a single schema.|"
    "Returns an error object with a descriptive message if a required parameter is missing or malformed.|"
    "The endpoint is read-only and safe to call repeatedly.|"
    "Timestamps are given in UTC using ISO 8601 format.|"
    "Each item in the result carries a stable identifier that can be passed to related endpoints.|"
    "Free-tier keys receive slightly delayed data; premium keys receive real-time updates.|"
    "Fields that are not available for a given item are returned as null.|"
    "Use this endpoint together with the search endpoints to resolve names to identifiers first."
)
PARAM_SENTENCES = _pool(
    "The value is case-insensitive.|Leading and trailing whitespace is ignored.|"
    "Invalid values cause the request to be rejected.|Must not be empty.|"
    "See the API documentation for the full list of accepted values.|"
    "Accepted values may change as the provider adds coverage."
)


def _function_doc(verb: str, noun: str, described_as: str, api: str, rng: random.Random) -> str:
    lookup = f" for a given {described_as}" if verb in ("get", "fetch", "list") else f" by {described_as}"
    source = rng.choice((f" using the {api} API", f" from the {api} API", f" via {api}", ""))
    return f"{VERB_DOC[verb]} {noun}{lookup}{source}."


def _verbosity(rng: random.Random) -> int:
    """Extra doc sentences for one function: mostly 0-2, with a long tail like real API docs."""
    return min(int(rng.lognormvariate(-1.0, 1.0)), len(DOC_SENTENCES))


def _param_doc(k: Kind, required: bool, verbose: bool, rng: random.Random) -> dict[str, Any]:
    text = rng.choice(k.descriptions)
    if verbose and k.type_name == "str" and rng.random() < 0.5:
        text += " (e.g., " + ", ".join(f"'{k.sample(rng)}'" for _ in range(2)) + ")."
    if verbose and rng.random() < 0.4:
        text += " " + rng.choice(PARAM_SENTENCES)
    default = _doc_default(k, required, rng)
    if not required and rng.random() < 0.3:
        text += f" Defaults to {default}." if default not in ("", None) else " Optional."
    doc: dict[str, Any] = {"description": text, "type": _declared_type(k, rng) + ("" if required else ", optional")}
    if default is not NO_DEFAULT:
        doc["default"] = default
    return doc


def _declared_type(k: Kind, rng: random.Random) -> str:
    """The kind's type, or now and then xlam's quirk: a numeric ID declared "str", coordinates declared "int"."""
    quirk = TYPE_QUIRKS.get(k.type_name)
    return quirk if quirk and rng.random() < TYPE_QUIRK_SHARE else k.type_name


def _doc_default(k: Kind, required: bool, rng: random.Random) -> Any:
    """What a tool doc shows as default: optional ones always (often ""), required ones an example value."""
    if not required:
        return "" if rng.random() < EMPTY_DEFAULT_SHARE else _as_written(k.default, rng)
    if k.type_name.startswith(("List", "Dict")) or rng.random() > REQUIRED_DEFAULT_SHARE:
        return NO_DEFAULT
    return "" if rng.random() < 0.1 else _as_written(k.sample(rng), rng)


def _as_written(value: Any, rng: random.Random) -> Any:
    """Real xlam writes most defaults as strings ("10", "false"); a few keep their type."""
    if value is None or isinstance(value, str) or rng.random() < TYPED_DEFAULT_SHARE:
        return value
    return str(value).lower() if isinstance(value, bool) else str(value)


def _make_function(name: str, domain: str, doc: str, params: tuple[Param, ...], actions: tuple[str, ...], noun: str,
                   rng: random.Random) -> Function:
    extra = _verbosity(rng)
    description = " ".join([doc, *rng.sample(DOC_SENTENCES, extra)])
    verbose = extra >= 2
    parameters = {p.kind.name: _param_doc(p.kind, p.required, verbose, rng) for p in params}
    tool = {"name": name, "description": description, "parameters": parameters}
    return Function(name, domain, tool, params, actions, noun)


def _domain_functions(domain: Domain, rng: random.Random) -> list[Function]:
    functions = []
    for verb in domain.verbs:
        for obj, noun, required, optional in domain.objects:
            for suffix, described_as, lookup_kinds in domain.lookups:
                name = "_".join(part for part in (verb, obj, suffix) if part)
                kept_optional = [k for k in optional if rng.random() < 0.6][: 5 - len(lookup_kinds) - len(required)]
                params = tuple(Param(k, True) for k in (*lookup_kinds, *required)) + tuple(
                    Param(k, False) for k in kept_optional)
                actions = tuple(f"{a} {noun}" for a in VERB_ACTIONS[verb])
                doc = _function_doc(verb, noun, described_as, rng.choice(domain.apis), rng)
                functions.append(_make_function(name, domain.name, doc, params, actions, noun, rng))
    return functions


def _utility_functions(rng: random.Random) -> list[Function]:
    functions = []
    for name, noun, actions, required, optional, doc in UTILITIES:
        params = tuple(Param(k, True) for k in required) + tuple(Param(k, False) for k in optional)
        functions.append(_make_function(name, "utility", doc, params, actions, noun, rng))
    return functions


@functools.lru_cache(maxsize=1)
def function_catalogue() -> tuple[Function, ...]:
    """All functions rows draw from, the same for every seed (names are unique; a test checks)."""
    rng = random.Random(CATALOGUE_SEED)
    return tuple(f for d in DOMAINS for f in _domain_functions(d, rng)) + tuple(_utility_functions(rng))


@functools.lru_cache(maxsize=1)
def _by_domain() -> dict[str, tuple[Function, ...]]:
    groups: dict[str, list[Function]] = {}
    for f in function_catalogue():
        groups.setdefault(f.domain, []).append(f)
    return {d: tuple(fs) for d, fs in groups.items()}


# ---------------------------------------------------------------- calls and queries


SINGLE_TEMPLATES = _pool(
    "{Action} {args}.|Can you {action} {args}?|Could you {action} {args}, please?|I'd like to {action} {args}.|"
    "Please {action} {args}.|I need to {action} {args}.|Help me {action} {args}.|{Action} {args}, thanks.|"
    "Is it possible to {action} {args}?|Quick one: {action} {args}."
)
NOUN_TEMPLATES = _pool("Show me {noun} {args}.|I'm looking for {noun} {args}.|Give me {noun} {args}.|What about {noun} {args}?")
PARALLEL_TEMPLATES = _pool(
    "{Action} {groups}{shared}.|Can you {action} {groups}{shared}?|I need {noun} {groups}{shared}.|"
    "{Action} {first}{shared}. Then do the same {rest}.|Please {action} {first}{shared}, and repeat it {rest}."
)
MULTI_CALL_TEMPLATES = _pool(
    "{Clauses}.|Can you {clauses}?|First, {sequence}.|I have a few requests: {semicolons}.|Please {clauses}."
)


@dataclass(frozen=True)
class Call:
    function: Function
    arguments: dict[str, Any]
    spoken: dict[str, str] = field(default_factory=dict)  # argument -> phrase implying its value; "" if another says it


def value_text(value: Any, rng: random.Random) -> str:
    """How a query spells a value: lists and dicts in prose or Python-literal form, scalars as str()."""
    if isinstance(value, list):
        return str(value) if rng.random() < 0.4 else join_words([repr(v) if isinstance(v, str) else str(v) for v in value])
    if isinstance(value, dict):
        return join_words([f"{k}={v!r}" for k, v in value.items()])
    return str(value)


def join_words(items: Sequence[str], last: str = " and ") -> str:
    return ", ".join(items[:-1]) + last + items[-1] if len(items) > 1 else "".join(items)


def phrase(k: Kind, value: Any, rng: random.Random) -> str:
    return rng.choice(k.phrases).format(v=value_text(value, rng))


def sample_call(function: Function, rng: random.Random, ctx: RowContext) -> Call:
    """Arguments for every required parameter; each optional one is stated in the query OPTIONAL_SHARE of the time."""
    params = [p for p in function.params if p.required or rng.random() < OPTIONAL_SHARE]
    arguments, spoken = sample_arguments(params, rng, ctx)
    return Call(function, arguments, spoken)


def sample_arguments(params: Sequence[Param], rng: random.Random, ctx: RowContext) -> tuple[dict, dict[str, str]]:
    """Values for ``params``, and the phrases for those the query implies instead of spelling out."""
    arguments: dict[str, Any] = {}
    spoken: dict[str, str] = {}
    for p in params:
        mentioned = _mentioned_value(p, arguments, rng, ctx) if p.mention and rng.random() < MENTION_SHARE else None
        if mentioned:
            arguments[p.kind.name], spoken[p.kind.name] = mentioned
        else:
            arguments[p.kind.name] = fresh_value(p, arguments, rng)
    _city_for_coordinates(params, arguments, spoken, rng)
    return arguments, spoken


def _mentioned_value(param: Param, taken: dict[str, Any], rng: random.Random, ctx: RowContext) -> tuple[Any, str] | None:
    """A mapped value and its phrase, or None when it would repeat a value or state an optional default."""
    value, text = param.mention(rng, ctx)
    repeats = isinstance(value, str) and value in taken.values()
    return None if repeats or (not param.required and value == param.kind.default) else (value, text)


def _city_for_coordinates(params: Sequence[Param], arguments: dict, spoken: dict[str, str], rng: random.Random) -> None:
    """A latitude/longitude pair given as a city name whose coordinates the catalogue fixes."""
    roles = {p.role for p in params}
    for lat, lon, phrases in COORDINATE_PAIRS:
        if {lat, lon} <= roles and rng.random() < CITY_SHARE:
            city = rng.choice(sorted(CITY_COORDINATES))
            arguments[KINDS[lat].name], arguments[KINDS[lon].name] = CITY_COORDINATES[city]
            spoken[KINDS[lat].name], spoken[KINDS[lon].name] = rng.choice(phrases.split("|")).format(n=city), ""


def fresh_value(param: Param, taken: dict[str, Any], rng: random.Random) -> Any:
    """A value that reads sensibly: no "from EUR to EUR", and an optional one is only stated if not the default."""
    while True:
        value = param.kind.sample(rng)
        repeats = isinstance(value, str) and value in taken.values()
        if not repeats and (param.required or value != param.kind.default):
            return value


def argument_phrase(call: Call, param: Param, rng: random.Random) -> str:
    name = param.kind.name
    return call.spoken[name] if name in call.spoken else phrase(param.kind, call.arguments[name], rng)


def argument_phrases(call: Call, rng: random.Random, required: bool | None = None) -> list[str]:
    """Query fragments for the call's arguments: required in declared order, optional ones shuffled after."""
    params = [p for p in call.function.params if p.kind.name in call.arguments and required in (None, p.required)]
    fixed = [argument_phrase(call, p, rng) for p in params if p.required]
    free = [argument_phrase(call, p, rng) for p in params if not p.required]
    rng.shuffle(free)
    return [text for text in fixed + free if text]


def join_phrases(parts: list[str], rng: random.Random) -> str:
    return " ".join(parts) if rng.random() < 0.5 else join_words(parts)


def capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(template: str, **slots: str) -> str:
    """str.format with a capitalized variant of every slot ({Action} next to {action})."""
    slots.update({capitalize(k): capitalize(v) for k, v in list(slots.items())})
    return template.format(**slots)


def single_query(call: Call, rng: random.Random) -> str:
    args = join_phrases(argument_phrases(call, rng), rng) if call.arguments else "for me"
    template = rng.choice(NOUN_TEMPLATES if call.function.domain != "utility" and rng.random() < 0.3 else SINGLE_TEMPLATES)
    return fill(template, action=rng.choice(call.function.actions), noun=call.function.noun, args=args)


def parallel_query(calls: list[Call], rng: random.Random) -> str:
    """Same function, required arguments varying per call, optional ones shared by all calls."""
    groups = [" ".join(argument_phrases(c, rng, required=True)) for c in calls]  # no inner "and": groups stay apart
    shared = argument_phrases(calls[0], rng, required=False)
    function = calls[0].function
    return fill(rng.choice(PARALLEL_TEMPLATES), action=rng.choice(function.actions), noun=function.noun,
                groups=join_words(groups, ", and "), first=groups[0], rest=join_words(groups[1:], ", and "),
                shared=(" " + join_phrases(shared, rng)) if shared else "")


def multi_call_query(calls: list[Call], rng: random.Random) -> str:
    clauses = [f"{rng.choice(c.function.actions)} {join_phrases(argument_phrases(c, rng), rng)}".rstrip() for c in calls]
    sequence = ". ".join([clauses[0]] + [capitalize(rng.choice(("then ", "after that, ", "also ", "")) + c) for c in clauses[1:]])
    return fill(rng.choice(MULTI_CALL_TEMPLATES), clauses=join_words(clauses, ", and "), sequence=sequence,
                semicolons="; ".join(clauses))


def parallel_calls(function: Function, count: int, rng: random.Random, ctx: RowContext) -> list[Call]:
    """Calls of one function whose required arguments differ, so each call is recoverable from the query."""
    first = sample_call(function, rng, ctx)
    calls, seen = [first], {_required_key(first)}
    for _ in range(count * 4):
        if len(calls) == count:
            break
        values, spoken = sample_arguments([p for p in function.params if p.required], rng, ctx)
        shared = {name: text for name, text in first.spoken.items() if name not in values}
        call = Call(function, {**first.arguments, **values}, {**shared, **spoken})
        if _required_key(call) not in seen:
            seen.add(_required_key(call))
            calls.append(call)
    return calls


def _required_key(call: Call) -> str:
    return repr([call.arguments[p.kind.name] for p in call.function.params if p.required])


@functools.lru_cache(maxsize=1)
def _parallel_capable() -> tuple[Function, ...]:
    """Functions with a required parameter: only those can be called several times with different arguments."""
    return tuple(f for f in function_catalogue() if any(p.required for p in f.params))


# ---------------------------------------------------------------- rows


def pick_functions(count: int, rng: random.Random, first: Function | None = None) -> list[Function]:
    """Distinct functions; distractors come from the first one's domain half the time (harder to tell apart)."""
    catalogue = function_catalogue()
    chosen = [first or rng.choice(catalogue)]
    while len(chosen) < count:
        neighbours = _by_domain()[chosen[0].domain]
        candidate = rng.choice(neighbours if rng.random() < 0.5 else catalogue)
        if candidate not in chosen:
            chosen.append(candidate)
    return chosen


def tool_count(rng: random.Random, low: int) -> int:
    """Skewed toward few tools, as in xlam; many tools make the long rows."""
    return rng.choices(range(low, MAX_TOOLS + 1), weights=TOOL_COUNT_WEIGHTS[low - 1 :])[0]


def build_row_calls(shape: str, rng: random.Random, ctx: RowContext) -> tuple[list[Function], list[Call], str]:
    if shape == "simple":
        function = rng.choice(function_catalogue())
        call = sample_call(function, rng, ctx)
        return [function], [call], single_query(call, rng)
    if shape == "multiple":
        tools = pick_functions(tool_count(rng, 2), rng)
        call = sample_call(tools[0], rng, ctx)
        return tools, [call], single_query(call, rng)
    if shape == "parallel":
        function = rng.choice(_parallel_capable())
        tools = pick_functions(tool_count(rng, 1), rng, function)
        count = rng.choices(list(PARALLEL_CALLS), weights=list(PARALLEL_CALLS.values()))[0]
        calls = parallel_calls(function, count, rng, ctx)
        return tools, calls, parallel_query(calls, rng)
    tools = pick_functions(tool_count(rng, 2), rng)
    used = rng.sample(tools, 3 if len(tools) > 2 and rng.random() < 0.25 else 2)
    calls = [sample_call(f, rng, ctx) for f in used + (rng.sample(used, 1) if rng.random() < 0.2 else [])]
    return tools, calls, multi_call_query(calls, rng)


def with_today(query: str, ctx: RowContext, rng: random.Random) -> str:
    """A query whose values depend on today's date says which date that is."""
    if not ctx.dated:
        return query
    return f"{ctx.today_sentence()} {query}" if rng.random() < 0.5 else f"{query} ({ctx.today_sentence()})"


def make_row(row_id: int, rng: random.Random) -> dict[str, Any]:
    shape = rng.choices(list(SHAPE_WEIGHTS), weights=list(SHAPE_WEIGHTS.values()))[0]
    ctx = RowContext.draw(rng)
    tools, calls, query = build_row_calls(shape, rng, ctx)
    query = with_today(query, ctx, rng)
    rng.shuffle(tools)
    answers = [{"name": c.function.name, "arguments": c.arguments} for c in calls]
    return {"id": row_id, "query": query, "answers": json.dumps(answers), "tools": "[" + ", ".join(f.tool_json for f in tools) + "]"}


def generate_rows(num_rows: int, seed: int) -> list[dict]:
    """``num_rows`` xlam-schema rows with ids 0..num_rows-1; the same seed gives the same rows."""
    rng = random.Random(seed)
    ids = tqdm(range(num_rows), desc="synth", unit="row", disable=num_rows < PROGRESS_MIN_ROWS, file=sys.stderr)
    return [make_row(i, rng) for i in ids]


# ---------------------------------------------------------------- output


def write_rows(rows: list[dict], out: Path) -> None:
    """Write by extension (.jsonl, .json, .parquet) to a temp file beside ``out``, then rename over it."""
    if out.suffix not in OUTPUT_FORMATS:
        raise ValueError(f"--out {out}: unknown format {out.suffix!r} (use one of {', '.join(OUTPUT_FORMATS)})")
    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            import datasets  # heavy; only this format needs it

            datasets.Dataset.from_list(rows).to_parquet(str(tmp))
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                if out.suffix == ".jsonl":
                    f.writelines(json.dumps(row) + "\n" for row in rows)
                else:
                    json.dump(rows, f)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fcdist synth",
        usage="fcdist synth --out FILE [--rows N] [--seed S]",
        description="Write synthetic rows in the xlam-function-calling-60k schema (id, query, answers, tools).",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="output file: .jsonl, .json or .parquet")
    parser.add_argument("--rows", type=int, default=1000, metavar="N", help="number of rows (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed; the same seed gives the same file (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    rows = generate_rows(args.rows, args.seed)
    write_rows(rows, args.out)
    print(f"wrote {len(rows)} rows to {args.out} (seed {args.seed}, {len(function_catalogue())} functions in the catalogue)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
