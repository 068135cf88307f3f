# syntax=docker/dockerfile:1
# Build stage: modules first, as their own layer, so code changes rebuild fast.
FROM golang:1.27-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/andon ./cmd/andon \
 && mkdir -p /out/data

# Final stage: a static binary on distroless, as a non-root user.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/andon /andon
COPY --from=build --chown=nonroot:nonroot /out/data /data
VOLUME /data
EXPOSE 8080 1883
ENV ANDON_DATA=/data
USER nonroot:nonroot
ENTRYPOINT ["/andon"]
CMD ["serve"]
