"""How forecasts enter and leave the system: the flat-file import and the analysts' data exports.

- ``imports`` (with ``import_rows``): import resolved yes/no forecasts from a flat CSV file
  (``manage.py import_forecasts``);
- ``exports``: the documented CSV/Parquet downloads of questions, forecasts, aggregates, scores
  and the tables other apps register.
"""
