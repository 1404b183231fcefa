"""The pharma dataset (bench/data/pharma/salesdaily.csv, see its README) in the
long format salescast ingests: one row per (date, category) with the day's
sales, from the wide export (one column per ATC category, dates as M/D/YYYY,
semicolon-separated). A user with wide data melts it like this before
ingesting; salescast reads long tables only.

Usage: pharma.py OUT_CSV   (writes date,category,sales)
"""

import csv
import os
import sys
from datetime import datetime

WIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "pharma", "salesdaily.csv")
CATEGORIES = ["M01AB", "M01AE", "N02BA", "N02BE", "N05B", "N05C", "R03", "R06"]


def to_long(wide=WIDE, out=None):
    """Writes the long table to `out`; returns the number of rows written."""
    rows = 0
    with open(wide, newline="") as f, open(out, "w", newline="") as o:
        reader = csv.DictReader(f, delimiter=";")
        writer = csv.writer(o)
        writer.writerow(["date", "category", "sales"])
        for record in reader:
            day = datetime.strptime(record["datum"], "%m/%d/%Y").date().isoformat()
            for category in CATEGORIES:
                writer.writerow([day, category, record[category]])
                rows += 1
    return rows


if __name__ == "__main__":
    print(to_long(out=sys.argv[1]))
