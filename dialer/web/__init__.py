"""The daemon's one web server (aiohttp, in the daemon's event loop): 127.0.0.1 by default, a generated access
token kept private in the run directory, token auth on every route, and sub-applications mounted under a
prefix (`build_app(..., subapps={"/api/": api_app})`). See docs/OBSERVE.md."""
