# Multi-stage build: a static redisbot binary in a distroless image that
# runs as non-root and has no shell. Build: docker build -t redisbot .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/redisbot ./cmd/redisbot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/redisbot /usr/local/bin/redisbot
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/redisbot"]
CMD ["serve", "--config", "/etc/redisbot/config.yaml"]
