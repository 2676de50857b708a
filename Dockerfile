# The kubetx image: `kubetx serve`, as manifests/deployment.yaml runs it.
#
#   docker build -t kubetx:0.1.0 .
#
# (Not built in this repository's CI: its machines have no container
# engine. Keep it in step with package.json and src/ by hand.)
#
# No build step: Node 24 runs the TypeScript sources directly (type
# stripping), so the image holds src/ as it is in the repository. The
# base image's Node 24 runs them; the `node` package, which pins Node 24 for
# npm scripts on developers' machines, is a devDependency and so is left
# out by --omit=dev.
FROM node:24-slim

WORKDIR /app
ENV NODE_ENV=production

# Dependencies first, so a source change reuses this layer. --ignore-scripts:
# no runtime dependency needs an install script.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

COPY src/ src/
# The CRDs travel with the binary that serves them.
COPY manifests/crds/ manifests/crds/

# The image's `node` user, by number so that the kubelet can check
# runAsNonRoot. Everything above is owned by root and read-only to it.
USER 1000:1000
EXPOSE 8443
ENTRYPOINT ["node", "src/cli/kubetx.ts"]
CMD ["--help"]
