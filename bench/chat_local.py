"""Benchmark: the offline engine's turn latency with 10,000 work orders in the shop.

    .venv/bin/python bench/chat_local.py                       # SQLite (a throwaway file)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test .venv/bin/python bench/chat_local.py

Creates a throwaway database (PostgreSQL: `bench_chat_local` next to the configured one; SQLite: a
temporary file), the evaluation shop (voice/tests/data/eval_shop.json) plus N generated work orders
(bulk_create; other customers' names, so the evaluation's expectations still hold), then plays every
turn of the evaluation set (utterances, each in a fresh conversation, and the multi-turn
conversations) through ConversationService with the offline engine, twice:

  engine      — understanding, tool calls and their indexed lookups; no CallLog writes
  with_calllog — the same plus what the chat API does per turn: CallLog turns, tool calls, state

The first few turns warm the per-process vocabulary cache and are not counted; building it is
reported separately (vocab_build_ms). Prints one JSON line. The database is dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import time

from scratch import configure_django, scratch_database  # noqa: E402 - bench/, beside this script

configure_django()

FIRST = ["Ana", "Ben", "Chloe", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivan", "Jade", "Kurt", "Lena", "Marco", "Nia",
         "Owen", "Pia", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wes", "Yara", "Zane"]  # fmt: skip
# Surnames not used by the evaluation shop's customers (its expectations assume those are unique).
LAST = """Abbott Acosta Adkins Aguilar Albert Allison Alvarado Andrews Archer Armstrong Arnold Atkins Austin Avery
Bailey Baldwin Ballard Barber Barker Barnes Barnett Barr Barrett Bartlett Barton Bass Bates Bauer Baxter Beck
Bender Bennett Benson Berg Berry Best Bird Black Blair Blake Boone Bowen Bowers Boyd Bradley Brady Bray Brennan
Brewer Briggs Brock Brooks Bryant Buchanan Buck Burgess Burke Burns Burton Bush Butler Byrd Cabrera Cain Caldwell
Calhoun Cameron Campbell Cannon Cardenas Carey Carlson Carpenter Carr Carroll Carson Carter Castillo Castro Chambers
Chan Chandler Chang Chapman Chavez Chen Christensen Church Cisneros Cobb Cochran Cohen Cole Coleman Collier Collins
Conner Conway Cooke Cooper Copeland Cortez Costa Cox Craig Crane Crawford Cross Cruz Cummings Curry Dalton Daniel
Daugherty Dawson Day Dean Decker Delgado Dennis Diaz Dickerson Dillon Dixon Dominguez Donovan Dorsey Douglas Doyle
Drake Dudley Duffy Duncan Dunn Duran Eaton Edwards Elliott Ellis Erickson Espinoza Estrada Evans Farmer Farrell
Ferguson Fischer Fitzgerald Fleming Fletcher Flores Flynn Foley Forbes Foster Fowler Franco Frank Franklin
Frazier Freeman Friedman Frost Fuller Gaines Gallagher Galloway Gamble Gardner Garner Gibbs Gibson Gilbert Giles
Gill Glass Glenn Golden Gomez Gonzales Goodman Gordon Graham Graves Gray Greene Greer Griffin Guerra Guerrero
Hahn Hale Haley Hamilton Hammond Hampton Hancock Hanson Hardy Harmon Harper Harrell Hart Harvey Hawkins Hayes
Haynes Heath Hebert Henderson Hendricks Henry Hensley Herman Hess Hicks Higgins Hines Hinton Hobbs Hodge Hoffman
Holland Holloway Holmes Holt Hood Hooper Hopkins Horn Horton Houston Howard Howell Hubbard Huber Hudson Huff
Hughes Hull Humphrey Hunt Hurst Hutchinson Ingram Irwin Jacobs James Jarvis Jennings Jensen Jimenez Joseph Joyce
Kane Kaufman Keith Keller Kelley Kemp Kennedy Kent Kerr Kim King Kirby Kirk Klein Knapp Knight Koch Kramer
Lambert Lane Lang Larsen Lawrence Lawson Leach Leonard Levine Lewis Lindsey Little Livingston Logan Long Lopez
Love Lowe Lucas Lynch Lyons Mack Maddox Madden Maldonado Malone Mann Manning Marsh Marshall Mason Mathews Maxwell
Mayer Maynard Mcbride Mccarthy Mcdonald Mckee Mcknight Meadows Medina Mejia Melton Mendoza Mercer Merritt Meyer
Meyers Middleton Mills Mitchell Molina Monroe Montgomery Moody Moon Moran Morales Morgan Morris Morrison Morrow
Morton Moss Mueller Mullins Munoz Murphy Murray Myers Nash Navarro Neal Nelson Newman Newton Nichols Nielsen
Noble Nolan Norman Norris Norton Novak Obrien Oconnor Odom Oliver Olsen Olson Ortega Ortiz Osborne Owens
Pace Padilla Page Palmer Park Parker Parks Parsons Patton Payne Pearson Peck Pena Pennington Perkins Peters
Peterson Phelps Phillips Pierce Pittman Poole Pope Porter Potter Powell Powers Pratt Preston Price Pruitt
Quinn Ramirez Ramos Randall Ray Reed Reese Reeves Reid Reyes Reynolds Rhodes Rice Rich Richards Richardson
Riley Rios Rivas Rivera Roach Robbins Roberts Robertson Robinson Rocha Rogers Rojas Roman Rosales Ross Roth
Rowe Rowland Russell Ryan Salazar Salinas Sanchez Sanders Sandoval Santiago Santos Saunders Savage Sawyer
Schmidt Schneider Schroeder Schultz Schwartz Scott Sellers Serrano Sexton Shaffer Shannon Sharp Shaw Shelton
Shepherd Sherman Short Silva Simmons Simon Simpson Sims Singleton Skinner Sloan Snow Snyder Solis Sparks Spears
Spencer Stafford Stanley Stark Steele Stein Stephens Stevens Stewart Stokes Stone Stout Strickland Strong Sullivan
Summers Sutton Swanson Sweeney Tanner Tate Taylor Terry Todd Torres Townsend Tran Travis Trevino Tucker Turner
Tyler Underwood Valdez Valencia Vance Vargas Vasquez Vaughn Vega Velasquez Villarreal Wade Wagner Walker Wall
Wallace Walsh Walters Walton Ward Warner Warren Waters Watkins Watson Watts Weaver Webb Weber Webster Weeks Welch
Wells West Wheeler Whitaker Whitney Wiggins Wilcox Wilder Wiley Wilkerson Wilkins Williams Williamson Willis
Winters Wise Wolf Wolfe Wong Wood Woods Woodward Wright Wyatt Yates York Young Zamora Zimmerman""".split()  # noqa: SIM905


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def seed(n_orders: int, rng: random.Random):
    from shops.models import WorkOrder
    from voice.evaluation import build_shop
    from voice.nlu.vehicles import MODELS

    shop = build_shop()
    statuses = [s for s, _ in WorkOrder.Status.choices]
    # Mostly history, as in a real shop's database: a few hundred open orders among thousands picked up.
    weights = [1 if s != WorkOrder.Status.PICKED_UP else 30 for s in statuses]
    orders = []
    for i in range(n_orders):
        make, model, _ = rng.choice(MODELS)
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        orders.append(
            WorkOrder(
                shop=shop,
                number=str(20000 + i),
                customer_name=name,
                customer_last_name=WorkOrder.last_name_of(name),
                customer_phone=f"+1555{3000000 + i:07d}",
                vehicle_year=rng.randint(2000, 2025),
                vehicle_make=make,
                vehicle_model=model,
                status=rng.choices(statuses, weights)[0],
                services="Oil change",
            )
        )
    WorkOrder.objects.bulk_create(orders, batch_size=2000)
    return shop


async def measure(shop, record: bool, warmup: int) -> dict:
    from voice.evaluation import EvalRun

    run = EvalRun(shop, record=record)
    report = await run.run()
    latencies = report.latencies_ms[warmup:]
    return {
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "turns": len(latencies),
        "intent_accuracy": round(report.accuracy, 4),
        "leaks": len(report.leaks),
    }


async def vocabulary_build_ms(shop) -> float:
    from voice.nlu import vocab

    vocab.forget()
    started = time.perf_counter()
    await vocab.ashop_vocabulary(shop.pk)
    return round((time.perf_counter() - started) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000, help="generated work orders (plus the eval shop's)")
    parser.add_argument("--warmup", type=int, default=5, help="turns not counted (cache warm-up)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    with scratch_database("bench_chat_local"):
        from shops.models import WorkOrder

        rng = random.Random(20261124)  # noqa: S311 - benchmark data
        started = time.perf_counter()
        shop = seed(args.orders, rng)
        seed_seconds = round(time.perf_counter() - started, 1)

        async def run() -> dict:
            from asgiref.sync import sync_to_async
            from django.db import connections

            try:
                build_ms = await vocabulary_build_ms(shop)
                engine = await measure(shop, record=False, warmup=args.warmup)
                with_calllog = await measure(shop, record=True, warmup=args.warmup)
            finally:
                # The ORM's worker thread holds its own connection; close it so the database can be dropped.
                await sync_to_async(connections.close_all)()
            return {"vocab_build_ms": build_ms, "engine": engine, "with_calllog": with_calllog}

        results = asyncio.run(run())
        line = {
            "bench": "chat_local",
            "database": connection.vendor,
            "work_orders": WorkOrder.objects.filter(shop=shop).count(),
            "python": platform.python_version(),
            "seed_seconds": seed_seconds,
            **results,
        }
        print(json.dumps(line))


if __name__ == "__main__":
    main()
