"""A real Milvus Lite gRPC server for the tests (:mod:`.server`)."""
