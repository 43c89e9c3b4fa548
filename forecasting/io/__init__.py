"""How forecasts enter and leave the system: the flat-file import and the analysts' data exports.

- ``imports`` (with ``import_rows`` and ``import_numeric``): import resolved yes/no, numeric and date
  forecasts from a flat CSV file (``manage.py import_forecasts``; the format is read from the header);
- ``exports``: the documented CSV/Parquet downloads of questions, forecasts, aggregates, scores
  and the tables other apps register.
"""
