"""Superset's Alerts & Reports as code (alerts/): definition: the file format, checked offline,
and its form in Superset's API; sync: create, update, export and remove through
`/api/v1/report/` (over HTTP, or in-process through the Flask app); evaluate: an alert's SQL run
once now as the reader role."""
