"""How synthetic queries imply argument values without spelling them out, as real xlam queries do.

A *mention* picks a value and a query phrase from which the value follows through a fixed mapping:
"for Apple" -> symbol "AAPL", "a dozen results" -> limit 12, "in Fahrenheit" -> units "imperial",
"next Friday" -> the ISO date of the first Friday after the date the query states as today. The tables
are the same for every seed, so a model that sees many training rows can learn them; only the choice
of rows depends on the seed. ``MENTIONS`` maps a parameter role (a key under ``kinds`` in
synth_catalogue.yaml) to its mention.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
FIRST_TODAY = datetime.date(2023, 1, 2)  # "today" in queries falls in 2023-2025, like the dataset's dates
TODAY_SPAN_DAYS = 3 * 365


@dataclass
class RowContext:
    """What the mentions of one row share: the date the query calls today, and whether a mention used it."""

    today: datetime.date
    dated: bool = False

    @classmethod
    def draw(cls, rng: random.Random) -> "RowContext":
        return cls(FIRST_TODAY + datetime.timedelta(days=rng.randrange(TODAY_SPAN_DAYS)))

    def today_sentence(self) -> str:
        return f"Today is {WEEKDAYS[self.today.weekday()]}, {self.today.isoformat()}."


Mention = Callable[[random.Random, RowContext], tuple[Any, str]]  # -> (value, phrase implying it)


def _table(text: str) -> dict[str, tuple[str, ...]]:
    """"VALUE=name/other name;..." -> {VALUE: (names...)}."""
    return {value: tuple(names.split("/")) for value, names in (item.split("=") for item in text.split(";"))}


def named(table: dict[Any, tuple[str, ...]], phrases: str) -> Mention:
    """A value from ``table`` mentioned by one of its names inside one of the ``phrases`` ("{n}" = name)."""
    values, templates = sorted(table, key=str), phrases.split("|")

    def mention(rng: random.Random, ctx: RowContext) -> tuple[Any, str]:
        value = rng.choice(values)
        return value, rng.choice(templates).format(n=rng.choice(table[value]))

    return mention


NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six/half a dozen", 7: "seven", 8: "eight",
                9: "nine", 10: "ten", 12: "twelve/a dozen", 15: "fifteen", 20: "twenty", 24: "two dozen", 25: "twenty-five",
                30: "thirty", 40: "forty", 50: "fifty", 100: "a hundred"}
NUMBERS = {value: tuple(words.split("/")) for value, words in NUMBER_WORDS.items()}
ORDINALS = {1: ("first",), 2: ("second",), 3: ("third",), 4: ("fourth",), 5: ("fifth",), 6: ("sixth",), 7: ("seventh",),
            8: ("eighth",), 9: ("ninth",), 10: ("tenth",)}


def counted(values: tuple[int, ...], phrases: str, words: dict[int, tuple[str, ...]] = NUMBERS) -> Mention:
    return named({v: words[v] for v in values}, phrases)


TICKERS = _table("AAPL=Apple;MSFT=Microsoft;GOOGL=Google/Alphabet;AMZN=Amazon;TSLA=Tesla;NVDA=Nvidia;META=Meta/Facebook;"
                 "NFLX=Netflix;AMD=Advanced Micro Devices;INTC=Intel;ORCL=Oracle;IBM=International Business Machines;"
                 "UBER=Uber;SHOP=Shopify;PYPL=PayPal;DIS=Disney;KO=Coca-Cola;PEP=PepsiCo;NKE=Nike;BA=Boeing;"
                 "JPM=JPMorgan Chase;V=Visa;MA=Mastercard")
COINS = _table("BTC=Bitcoin;ETH=Ethereum;SOL=Solana;ADA=Cardano;XRP=Ripple;DOGE=Dogecoin;DOT=Polkadot;AVAX=Avalanche;"
               "LTC=Litecoin;LINK=Chainlink;ATOM=Cosmos;XLM=Stellar;TRX=Tron;BNB=Binance Coin")
COUNTRY_CODES = _table("US=the United States/the USA;GB=the United Kingdom/the UK;DE=Germany;FR=France;JP=Japan;BR=Brazil;"
                       "CA=Canada;AU=Australia;IN=India;MX=Mexico;IT=Italy;ES=Spain;NG=Nigeria;KE=Kenya;SE=Sweden;"
                       "NO=Norway;PL=Poland;PT=Portugal;IE=Ireland;KR=South Korea;TH=Thailand;CL=Chile;TR=Turkey;"
                       "NL=the Netherlands;CH=Switzerland;ZA=South Africa;NZ=New Zealand;SG=Singapore")
LANGUAGES = _table("en=English;fr=French;de=German;es=Spanish;it=Italian;pt=Portuguese;ja=Japanese;ko=Korean;zh=Chinese;"
                   "ar=Arabic;ru=Russian;nl=Dutch;sv=Swedish;pl=Polish;tr=Turkish")
CURRENCIES = _table("USD=US dollars;EUR=euros;GBP=British pounds/pounds sterling;JPY=Japanese yen;CAD=Canadian dollars;"
                    "AUD=Australian dollars;CHF=Swiss francs;CNY=Chinese yuan;INR=Indian rupees;MXN=Mexican pesos;"
                    "BRL=Brazilian reais;SEK=Swedish kronor;NOK=Norwegian kroner;KRW=South Korean won;SGD=Singapore dollars")
QUOTE_CURRENCIES = {code.lower(): names for code, names in CURRENCIES.items() if code in ("EUR", "GBP", "JPY", "AUD", "CAD", "CHF")}
AIRPORTS = _table("JFK=New York Kennedy;LAX=Los Angeles;LHR=London Heathrow;CDG=Paris Charles de Gaulle;FRA=Frankfurt;"
                  "HND=Tokyo Haneda;SFO=San Francisco;ORD=Chicago O'Hare;DXB=Dubai;SIN=Singapore Changi;AMS=Amsterdam Schiphol;"
                  "MAD=Madrid;BCN=Barcelona;FCO=Rome Fiumicino;SYD=Sydney;YYZ=Toronto Pearson;GRU=Sao Paulo Guarulhos;"
                  "ICN=Seoul Incheon;MUC=Munich;IST=Istanbul;BOS=Boston Logan;SEA=Seattle-Tacoma")
UNIT_SYSTEMS = _table("metric=Celsius/kilometers;imperial=Fahrenheit/miles;standard=Kelvin")
TEMPERATURE_UNITS = _table("celsius=°C;fahrenheit=°F")
LENGTH_UNITS = _table("meters=m;feet=ft;inches=in;centimeters=cm;miles=mi;kilometers=km;yards=yd")
WEIGHT_UNITS = _table("kilograms=kg;pounds=lbs;ounces=oz;grams=g;stones=st")
INTERVALS = _table("1m=every minute;5m=every five minutes;15m=every fifteen minutes;1h=hourly/every hour;1wk=weekly;1mo=monthly")
SORT_ORDERS = _table("price=cheapest first;rating=best rated first/highest rated first;date=newest first/most recent first;"
                     "popularity=most popular first;distance=closest first/nearest first")
CABIN_CLASSES = _table("premium_economy=premium economy;business=business;first=first")
COMPOUNDING = {1: ("annually", "once a year"), 2: ("twice a year", "semi-annually"), 4: ("quarterly",), 12: ("monthly",),
               365: ("daily",)}
RADII = {500: ("half a kilometer",), 1000: ("1 km", "one kilometer"), 2000: ("2 km",), 3000: ("3 km",), 10000: ("10 km",),
         25000: ("25 km",)}
STOPS = {0: ("non-stop only", "direct flights only"), 1: ("with at most one stop",)}
QUARTERS = {q: (f"the {ORDINALS[q][0]} quarter",) for q in (1, 2, 3, 4)}
PLATFORMS = _table("xbox-one=Xbox One;ps4=PlayStation 4;ps5=PlayStation 5;epic-games-store=the Epic Games Store;"
                   "switch=Nintendo Switch;ios=iPhone")
TEAMS = _table("Arsenal=the Gunners;Chelsea=the Blues;Liverpool=the Reds;Manchester City=Man City;Barcelona=Barça;"
               "Bayern Munich=Bayern;Juventus=Juve;Inter Milan=Inter;PSG=Paris Saint-Germain;Real Madrid=Los Blancos;"
               "Lakers=LA Lakers;Yankees=the Bronx Bombers")
PRICES = {50.0: ("$50", "fifty dollars"), 100.0: ("$100", "a hundred dollars"), 200.0: ("$200",), 250.0: ("$250",),
          500.0: ("$500", "five hundred dollars")}
PRINCIPALS = {50000.0: ("$50k", "fifty thousand dollars"), 100000.0: ("$100k", "a hundred thousand dollars"),
              250000.0: ("$250k",), 500000.0: ("half a million dollars", "$500k")}
RATINGS = {3.0: ("three stars",), 3.5: ("three and a half stars",), 4.0: ("four stars",), 4.5: ("four and a half stars",)}
DISH_CUISINES = _table("Japanese=sushi/ramen;Italian=pasta/pizza;Mexican=tacos/burritos;Indian=curry/biryani;Thai=pad thai;"
                       "French=crêpes;Greek=souvlaki;Korean=bibimbap;Vietnamese=pho;Spanish=tapas/paella;Lebanese=falafel")
LEAGUES = _table("Premier League=EPL/the English top flight;La Liga=the Spanish top flight;Serie A=the Italian top flight;"
                 "Bundesliga=the German top flight;Ligue 1=the French top flight;Champions League=the UCL")
COIN_IDS = {name.lower(): (symbol,) for symbol, (name, *_) in COINS.items() if name in
            ("Bitcoin", "Ethereum", "Solana", "Cardano", "Ripple", "Dogecoin", "Polkadot", "Chainlink", "Litecoin", "Cosmos")}
# Rounded to 4 decimals, the precision the coordinate parameters use.
CITY_COORDINATES = {
    "Paris": (48.8566, 2.3522), "Berlin": (52.52, 13.405), "London": (51.5074, -0.1278), "Tokyo": (35.6762, 139.6503),
    "New York": (40.7128, -74.006), "Los Angeles": (34.0522, -118.2437), "Chicago": (41.8781, -87.6298),
    "Toronto": (43.6532, -79.3832), "Sydney": (-33.8688, 151.2093), "Madrid": (40.4168, -3.7038),
    "Rome": (41.9028, 12.4964), "Amsterdam": (52.3676, 4.9041), "Mumbai": (19.076, 72.8777), "Singapore": (1.3521, 103.8198),
    "Cairo": (30.0444, 31.2357), "Nairobi": (-1.2921, 36.8219), "Mexico City": (19.4326, -99.1332),
    "Buenos Aires": (-34.6037, -58.3816), "Seattle": (47.6062, -122.3321), "Dubai": (25.2048, 55.2708),
    "Istanbul": (41.0082, 28.9784), "Seoul": (37.5665, 126.978), "Cape Town": (-33.9249, 18.4241), "Rio de Janeiro": (-22.9068, -43.1729),
}
# (latitude role, longitude role, phrases naming the city) for coordinate pairs a city can stand for
COORDINATE_PAIRS = (("latitude", "longitude", "in {n}|near {n}|around {n}|for {n}"), ("lat1", "lon1", "from {n}"),
                    ("lat2", "lon2", "to {n}"))


def relative_date(phrases: str, future_only: bool = False) -> Mention:
    """An ISO date said relative to the row's today ("tomorrow", "in 5 days", "next Friday"); marks the row dated."""
    templates = phrases.split("|")

    def mention(rng: random.Random, ctx: RowContext) -> tuple[str, str]:
        ctx.dated = True
        offset, said = _relative_day(rng, ctx.today, future_only)
        return (ctx.today + datetime.timedelta(days=offset)).isoformat(), rng.choice(templates).format(n=said)

    return mention


def _relative_day(rng: random.Random, today: datetime.date, future_only: bool) -> tuple[int, str]:
    form = rng.choice(("today", "tomorrow", "in_days", "weekday", "week") + (() if future_only else ("yesterday", "days_ago")))
    if form == "today":
        return 0, "today"
    if form == "tomorrow":
        return 1, "tomorrow"
    if form == "yesterday":
        return -1, "yesterday"
    if form == "week":
        return 7, "a week from today"
    days = rng.randint(2, 10)
    if form == "in_days":
        return days, f"in {days} days"
    if form == "days_ago":
        return -days, f"{days} days ago"
    weekday = rng.randrange(7)  # "next Friday": the first Friday after today (1-7 days ahead)
    return (weekday - today.weekday() - 1) % 7 + 1, f"next {WEEKDAYS[weekday]}"


def spelled_date(phrases: str, first_year: int = 2019, last_year: int = 2025) -> Mention:
    """An ISO date written out in words: "March 4, 2024" -> "2024-03-04"."""
    templates = phrases.split("|")

    def mention(rng: random.Random, ctx: RowContext) -> tuple[str, str]:
        date = datetime.date(rng.randint(first_year, last_year), rng.randint(1, 12), rng.randint(1, 28))
        said = f"{MONTHS[date.month - 1]} {date.day}, {date.year}"
        return date.isoformat(), rng.choice(templates).format(n=said)

    return mention


def either(*mentions: Mention) -> Mention:
    return lambda rng, ctx: rng.choice(mentions)(rng, ctx)


def dated(spelled: str, relative: str, future_only: bool = False) -> Mention:
    """Half the time a date in words ("on March 4, 2024"), half the time relative to today ("next Friday")."""
    return either(spelled_date(spelled), relative_date(relative, future_only))


def relative_season(phrases: str) -> Mention:
    """A season by its starting year: the current one starts in August (so in March 2024 it is 2023)."""
    templates = phrases.split("|")

    def mention(rng: random.Random, ctx: RowContext) -> tuple[int, str]:
        ctx.dated = True
        current = ctx.today.year if ctx.today.month >= 8 else ctx.today.year - 1
        back, said = rng.choice(((0, "this season"), (1, "last season")))
        return current - back, rng.choice(templates).format(n=said)

    return mention


def relative_year(phrases: str) -> Mention:
    templates = phrases.split("|")

    def mention(rng: random.Random, ctx: RowContext) -> tuple[int, str]:
        ctx.dated = True
        back, said = rng.choice(((0, "this year"), (1, "last year"), (2, "the year before last")))
        return ctx.today.year - back, rng.choice(templates).format(n=said)

    return mention


MENTIONS: dict[str, Mention] = {
    "symbol": named(TICKERS, "for {n}|for {n} stock|of {n} shares|for {n}'s stock"),
    "coin_symbol": named(COINS, "for {n}|of {n}"),
    "country_code": named(COUNTRY_CODES, "for {n}|in {n}|in the market of {n}"),
    "lang": named(LANGUAGES, "in {n}|with text in {n}"),
    "target_language": named(LANGUAGES, "into {n}|to {n}"),
    "source_language": named(LANGUAGES, "from {n}"),
    "units": named(UNIT_SYSTEMS, "in {n}|with results in {n}"),
    "vs_currency": named(QUOTE_CURRENCIES, "priced in {n}|in {n}"),
    "from_currency": named(CURRENCIES, "from {n}|in {n}"),
    "to_currency": named(CURRENCIES, "to {n}|into {n}"),
    "origin": named(AIRPORTS, "from {n}|leaving from {n}"),
    "destination": named(AIRPORTS, "to {n}|going to {n}"),
    "from_temp": named(TEMPERATURE_UNITS, "from {n}|in {n}"),
    "to_temp": named(TEMPERATURE_UNITS, "to {n}|into {n}"),
    "from_length": named(LENGTH_UNITS, "from {n}|in {n}"),
    "to_length": named(LENGTH_UNITS, "to {n}|into {n}"),
    "from_weight": named(WEIGHT_UNITS, "from {n}|in {n}"),
    "to_weight": named(WEIGHT_UNITS, "to {n}|into {n}"),
    "interval": named(INTERVALS, "{n}|sampled {n}"),
    "sort_by": named(SORT_ORDERS, "{n}|sorted {n}"),
    "cabin_class": named(CABIN_CLASSES, "in {n} class|flying {n}"),
    "compounds_per_year": named(COMPOUNDING, "compounded {n}"),
    "radius": named(RADII, "within {n}|in a radius of {n}"),
    "max_stops": named(STOPS, "{n}"),
    "quarter": named(QUARTERS, "for {n}"),
    "cuisine": named(DISH_CUISINES, "serving {n}|that do {n}"),
    "league": named(LEAGUES, "in the {n}|for the {n}"),
    "coin_id": named(COIN_IDS, "for the coin {n}|for {n}"),
    "season": relative_season("for {n}|in {n}"),
    "platform": named(PLATFORMS, "on {n}|for {n}"),
    "team_name": named(TEAMS, "for {n}|of {n}"),
    "max_price": named(PRICES, "under {n}|for at most {n}"),
    "principal": named(PRINCIPALS, "for a principal of {n}|on {n}"),
    "min_rating": named(RATINGS, "rated at least {n}|with at least {n}"),
    "n": counted((3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30), "for n = {n}|for {n}"),
    "experience_years": counted((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20), "with {n} years of experience"),
    "limit": counted((3, 5, 10, 12, 15, 20, 24, 25, 30, 50), "limited to {n} results|the top {n}|just {n} items"),
    "page": counted((2, 3, 4, 5, 6, 7, 8, 9, 10), "on the {n} page|from the {n} page of the results", ORDINALS),
    "days": counted((2, 3, 4, 5, 6, 7, 10, 12), "for the next {n} days|covering {n} days"),
    "adults": counted((2, 3, 4, 5, 6), "for {n} adults|with {n} guests"),
    "bedrooms": counted((2, 3, 4, 5), "with at least {n} bedrooms|with {n} bedrooms"),
    "tip_percentage": counted((5, 10, 15, 20, 25, 30), "at {n} percent|with a {n} percent tip"),
    "years_term": either(counted((2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 30), "over {n} years|for {n} years"),
                         named({10: ("a decade",), 20: ("two decades",)}, "over {n}")),
    "year": relative_year("for {n}|in {n}"),
    "date": dated("on {n}|for {n}", "{n}|for {n}"),
    "start_date": dated("from {n}|starting {n}", "from {n}|starting {n}"),
    "end_date": dated("to {n}|until {n}", "until {n}|up to {n}"),
    "check_in": dated("checking in on {n}|arriving {n}", "checking in {n}|arriving {n}", future_only=True),
    "check_out": dated("checking out on {n}|leaving {n}", "checking out {n}|leaving {n}", future_only=True),
    "departure_date": dated("departing on {n}|leaving on {n}", "departing {n}|leaving {n}", future_only=True),
    "return_date": dated("returning on {n}|coming back on {n}", "returning {n}|coming back {n}", future_only=True),
    "pickup_date": dated("picking up on {n}", "picking up {n}", future_only=True),
    "dropoff_date": dated("dropping off on {n}", "dropping off {n}", future_only=True),
    "birth_date": spelled_date("born on {n}|with birth date {n}", 1950, 2010),
}
