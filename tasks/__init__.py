"""Pipeline steps as Prefect tasks: each reads files, calls simclr/, writes files.

Task caching is off (cache_policy NONE): DVC's cache is the cache.
"""
