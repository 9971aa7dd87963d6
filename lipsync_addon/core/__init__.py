"""The bpy-free core: audio -> speech analysis -> visemes -> curves (see pipeline.run). Never imports bpy."""
