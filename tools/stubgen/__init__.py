"""The jobstore stub generator: a protoc plugin emitting client stubs for every language."""
