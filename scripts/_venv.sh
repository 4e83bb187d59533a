# Sourced by scripts/demo.sh and scripts/test.sh: makes ./.venv (once) and installs django-papay into it
# in editable mode, with the extras named in $1 (e.g. "test,dev"). Re-installs only when setup.py or
# pyproject.toml (the metadata and the extras) changes.
papay_venv() {
    local extras="${1:-}" venv="${PAPAY_VENV:-.venv}" spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    if [ ! -x "$venv/bin/python" ]; then
        echo "==> creating $venv"
        python3 -m venv "$venv"
    fi
    local stamp="$venv/.installed-${extras:-base}-$(cat setup.py pyproject.toml | sha1sum | cut -c1-12)"
    if [ ! -e "$stamp" ]; then
        echo "==> installing django-papay${extras:+[$extras]} into $venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --editable "$spec"
        touch "$stamp"
    fi
    export PATH="$PWD/$venv/bin:$PATH"
}
