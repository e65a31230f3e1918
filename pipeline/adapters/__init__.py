"""Our side of the library details the project needs that have no public API: one module per library.

Each module is the only place that touches its library's detail, so an upgrade that
changes it breaks in one place, which its test names. Import the module itself
(``pipeline.adapters.singer``): this package imports no library, because the
``pipeline`` package is installed in virtualenvs that lack some of them.
"""
