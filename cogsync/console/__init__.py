"""The operators' web console, served by the same process at ``/_cogsync/console`` when
the server runs with ``--console``: server-rendered pages (Jinja2) made lively with
htmx (shipped in ``static/``, no internet needed), behind an operator sign-in.

- :mod:`cogsync.console.routes`: the console, its routes and its operations pages;
- :mod:`cogsync.console.data_pages`: pools, identities, datasets and records;
- :mod:`cogsync.console.sessions`: the operator login, session cookies, CSRF tokens;
- :mod:`cogsync.console.rates`: request rates of this process;
- :mod:`cogsync.console.web`: templates, forms, responses, route matching.
"""
