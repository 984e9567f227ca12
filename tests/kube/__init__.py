"""A real Kubernetes API server (etcd + kube-apiserver, envtest-style) for tests.

``scripts/kube-test-env`` builds the two binaries from the Go module proxy; ``apiserver`` starts
them and installs the Knative CRDs kept in ``crds/``.
"""
