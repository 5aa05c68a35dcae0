# Sourced by scripts/test: the browser tests drive Debian's Chromium (/usr/bin/chromium), and
# the headful ones run it under Xvfb. Neither comes from PyPI, and Playwright cannot download a
# browser here; install the Debian packages when missing (as root, with apt-get), else stop
# with the command to run.
browser_packages=()
[ -x /usr/bin/chromium ] || browser_packages+=(chromium)
command -v Xvfb >/dev/null 2>&1 || browser_packages+=(xvfb)
if [ ${#browser_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "· installing ${browser_packages[*]} (Debian packages) for the browser tests" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${browser_packages[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && apt-get install -y -q "${browser_packages[@]}" >/dev/null; }
  else
    echo "error: the browser tests need ${browser_packages[*]}: sudo apt-get install ${browser_packages[*]}" >&2
    exit 1
  fi
fi
