"""The web console at ``/console``: static pages that run on the admin API (issue #17).

Plain HTML, CSS and JavaScript shipped inside the package: no Node build at install time and no
asset from a CDN (servers run behind firewalls). The pages hold no secret; the admin key typed
into the login form stays in the browser tab (``sessionStorage``) and goes with each API call,
so every figure the console shows is one the admin API would give that key.
"""
