# shellcheck shell=bash disable=SC2034
# Sourced by scripts/up and scripts/down: the pulumi CLI they use and the environment they give it.
# bash 3.2 (macOS) and POSIX tools only.

PULUMI_VERSION=3.272.0          # the CLI scripts/up installs when none is found (the SDK's own version)
PULUMI_ROOT=$PWD/.tools/pulumi  # where: a folder of the project, never the user's PATH or shell profile
STACK=${STACK:-dev}

# A CLI scripts/up installed earlier comes first.
if [[ -x $PULUMI_ROOT/bin/pulumi ]]; then
  PATH=$PULUMI_ROOT/bin:$PATH
fi

# A local state folder and, unless given, a development passphrase: secrets only through the environment.
pulumi_env() {
  if [[ -z ${PULUMI_BACKEND_URL:-} ]]; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  fi
  if [[ -z ${PULUMI_CONFIG_PASSPHRASE+x} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
    echo "scripts/$(basename "$0"): PULUMI_CONFIG_PASSPHRASE is not set; using a development passphrase for the local stack" >&2
    export PULUMI_CONFIG_PASSPHRASE=dev-only-passphrase
  fi
  export PULUMI_SKIP_UPDATE_CHECK=true
}
