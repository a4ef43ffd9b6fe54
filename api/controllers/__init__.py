"""The REST resources, one controller each."""
