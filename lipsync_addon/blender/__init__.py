"""Blender layer: the only part of the add-on that imports bpy.

Entry points: :mod:`.api` (scripts), :mod:`.operators` (UI), :mod:`.registration`.
"""
