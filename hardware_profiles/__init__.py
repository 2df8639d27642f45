"""The shipped hardware profiles, as package data (one JSON file per device setting).

This folder is a package so that a wheel (``pip install .``) carries the profiles: they are
found through ``importlib.resources.files("hardware_profiles")`` by
:func:`nas.hardware.list_profiles` and :func:`nas.hardware.load_profile`. See ``README.md``
here for where each profile comes from.
"""
