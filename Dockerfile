# syntax=docker/dockerfile:1
# Multi-stage build: a static dicomgate binary (pure Go: SQLite is
# modernc.org/sqlite) on a minimal base, run as a non-root user with its
# data on a volume.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/dicomgate ./cmd/dicomgate \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dicomgate /usr/local/bin/dicomgate
# The volume's mount point belongs to the non-root user, so a fresh named
# volume is writable.
COPY --from=build --chown=65532:65532 /out/data /data
VOLUME ["/data"]
ENV DICOMGATE_DATA=/data
# 11112: DICOM, 2762: DICOM TLS (--dicom-tls-addr :2762), 8080: platform
# and patient pages, 8081: admin UI.
EXPOSE 11112 2762 8080 8081
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/dicomgate"]
CMD ["serve"]
