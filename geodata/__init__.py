"""Geography for rehabmap, offline: postcodes and place names to points, points to NHS and council areas,
and distances. Everything is read from a folder built once from official ONS files (`geodata.build`).

Import each name from its module (`geodata.geography.Geography`, `geodata.build.build_geodata`,
`geodata.distance.haversine_km`, ...), not from the package: the package imports nothing, so a module that
needs only `geodata.errors` or `geodata.distance` does not load shapely and NumPy (every `rehabmap` command
imports the errors; the areas cost ~1 s of CPU to import).
"""
