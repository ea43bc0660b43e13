# Shared by scripts/serve and scripts/test (sourced, not run).

# Run a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

# Put uv on PATH, installing it from PyPI when it is missing.
ensure_uv() {
  export PATH="$HOME/.local/bin:$PATH"
  command -v uv >/dev/null 2>&1 && return 0
  if ! python3 -m pip --version >/dev/null 2>&1; then
    (as_root apt-get update -qq && as_root apt-get install -y -qq python3-pip) >/dev/null
  fi
  # A python.org or pyenv Python takes it as is; Debian's own Python is
  # externally managed (PEP 668) and only takes it into the user's site.
  python3 -m pip install --quiet uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv
}
