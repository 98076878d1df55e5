"""Rails: one folder per external system, each with a declarative table of its entities."""
