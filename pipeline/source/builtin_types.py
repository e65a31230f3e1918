"""The built-in PostgreSQL types that cannot travel to the analytics database as themselves.

Step 1 sends their values as text (tap-postgres-native's ``type_mapping``) and step 2
refuses a day file that declares one of them (``target_analytics.columns``), so a file
written before this rule cannot load them either. Their oids are fixed by PostgreSQL
(built-in types keep their oid across versions).

- A ``reg*`` value is an object of the source's catalog: its text names it, and the
  analytics database would read that name as one of its own objects, or fail to find
  it (``relation "orders" does not exist``). ``aclitem`` names roles the same way.
- The internal types below accept no input value at all, so only their text can travel.
"""

from __future__ import annotations

# Types whose text names objects of the source's own catalog.
CATALOG_REFERENCE_OIDS = frozenset(
    {
        24,  # regproc
        2202,  # regprocedure
        2203,  # regoper
        2204,  # regoperator
        2205,  # regclass
        2206,  # regtype
        4096,  # regrole
        4089,  # regnamespace
        3734,  # regconfig
        3769,  # regdictionary
        4191,  # regcollation
        1033,  # aclitem: its text names roles, which its input looks up
    }
)
# Built-in base types whose input function refuses every value: only their text travels.
NO_INPUT_OIDS = frozenset(
    {
        194,  # pg_node_tree
        3361,  # pg_ndistinct
        3402,  # pg_dependencies
        5017,  # pg_mcv_list
        4600,  # pg_brin_bloom_summary
        4601,  # pg_brin_minmax_multi_summary
        3642,  # gtsvector
    }
)
# The built-in types that cannot travel as themselves, and so travel as text.
TEXT_OIDS = CATALOG_REFERENCE_OIDS | NO_INPUT_OIDS
