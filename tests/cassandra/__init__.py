"""A real Apache Cassandra 5 server for the tests (:mod:`.server`)."""
