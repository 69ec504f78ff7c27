# syntax=docker/dockerfile:1
# The tailgate image with a Docker (BuildKit) daemon. It holds the same files as the daemon-free
# build (go -C deploy/image run . ..., which CI runs): deploy/image writes the filesystem, this
# copies it into scratch. Multi-platform:
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg MODIFIED=$(test -z "$(git status --porcelain)" && echo false || echo true) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     -t ghcr.io/tailgate-dev/tailgate:$(git describe --tags --always --dirty) .
# .git is not sent to the daemon (.dockerignore): the stamps come from the build args.

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
ARG TARGETOS TARGETARCH
ARG VERSION=dev COMMIT=unknown MODIFIED=false SOURCE_DATE_EPOCH=0
WORKDIR /src
COPY go.mod go.sum ./
COPY deploy/image/go.mod deploy/image/go.sum deploy/image/
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download && cd deploy/image && go mod download
COPY . .
# A static binary (CGO_ENABLED=0), cross-compiled for the target, stamped for `tailgate version`,
# and the image's files (CA roots from golang.org/x/crypto/x509roots, /etc/passwd with nonroot).
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd deploy/image && go run . -src /src -platforms "$TARGETOS/$TARGETARCH" \
      -version "$VERSION" -commit "$COMMIT" -modified "$MODIFIED" -date "$SOURCE_DATE_EPOCH" \
      -rootfs /rootfs

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
EXPOSE 2020 24224
ENTRYPOINT ["/usr/local/bin/tailgate"]
CMD ["run"]
