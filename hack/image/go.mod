// Module image builds the server's OCI image without a Docker daemon (make image): the
// Dockerfile's own go build line, its USER and ENTRYPOINT, and no base image from a
// registry. Kept apart so that go-containerregistry never mixes with the product's
// dependencies.
module github.com/tidb-backup-guard/tidb-backup-guard/hack/image

go 1.26

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
