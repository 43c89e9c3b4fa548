"""Forecasting's HTML pages, one module per concept; forecasting/urls.py routes them.

Views stay thin: they validate a form, call a service (``forecasting.services``) and render or
redirect. ``panels`` lets other apps add panels to the question page.
"""
