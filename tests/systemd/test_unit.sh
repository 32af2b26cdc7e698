#!/usr/bin/env bash
# test_unit.sh: liveevents.service under a real systemd. Boots systemd as PID 1 of a systemd-nspawn
# container (a cached minbase Debian 12 rootfs), installs the unit and liveeventsd into it, and checks
# what only systemd can show: Type=notify readiness, the journal with priorities and worker PIDs,
# worker restarts inside the unit, the state file surviving unit restarts, the watchdog, the
# single-instance lock, a clean stop and a clean poweroff. Output is TAP; exit status 0 = all passed.
#
# Run as root:  tests/systemd/test_unit.sh
# Environment:
#   LIVEEVENTSD        the binary to test (default: <repo>/daemon/liveeventsd)
#   LIVEEVENTS_UNIT    a ready unit file (default: generated from <repo>/systemd/liveevents.service.in)
#   LIVEEVENTS_SBINDIR @sbindir@ when generating the unit (default /usr/local/sbin)
#   LIVEEVENTS_ROOTFS  the cached container root (default /var/tmp/liveevents-rootfs); it is built
#                      with debootstrap on first use (about 1-2 minutes), from the host's apt mirror
#   LIVEEVENTS_MAX_EXPOSURE  highest acceptable `systemd-analyze security` exposure (default 3.0)
#   LIVEEVENTS_KEEP_LOGS=1   print the unit's whole journal at the end even when everything passed
#
# Needs: systemd-container and debootstrap (installed with apt-get when missing), curl on the host.
# The container shares the host's network, so the unit listens on two free 127.0.0.1 ports chosen
# here. During the test the unit runs with SystemCallErrorNumber=kill (a drop-in), so a system call
# outside its filter kills the process instead of failing quietly with EPERM, and is caught below.
set -u
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROOTFS=${LIVEEVENTS_ROOTFS:-/var/tmp/liveevents-rootfs}
BIN=${LIVEEVENTSD:-$REPO/daemon/liveeventsd}
UNIT_IN=$REPO/systemd/liveevents.service.in
SBINDIR=${LIVEEVENTS_SBINDIR:-/usr/local/sbin}
MAX_EXPOSURE=${LIVEEVENTS_MAX_EXPOSURE:-3.0}
UNIT=liveevents.service
ROOTFS_PKGS="systemd,systemd-sysv,dbus"
ROOTFS_STAMP="liveevents-test rootfs v1: bookworm minbase $ROOTFS_PKGS"
WATCHDOG_LIMIT=15   # seconds allowed for the watchdog to fire and the unit to come back (expect ~8)
T_START=$(date +%s.%N)

# --- TAP -----------------------------------------------------------------------------------------
N=0
FAILED=0
TODO=0
ok() {
	N=$((N + 1))
	echo "ok $N - $*"
}
not_ok() {
	N=$((N + 1))
	FAILED=$((FAILED + 1))
	echo "not ok $N - $*"
}
# check NAME COMMAND...: one TAP line from a command's exit status
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
# todo NAME REASON COMMAND...: a check of a known, reported daemon bug (TAP "# TODO": reported,
# not counted as a failure); it turns into a plain pass once the bug is fixed.
todo() {
	local name=$1 reason=$2
	shift 2
	N=$((N + 1))
	TODO=$((TODO + 1))
	if "$@"; then echo "ok $N - $name # TODO $reason (passes now: drop the TODO)"; else echo "not ok $N - $name # TODO $reason"; fi
}
diag() { sed 's/^/# /'; }
note() { echo "# $*"; }
bail() {
	echo "Bail out! $*"
	exit 1
}
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# --- the container's life cycle: set up first, so that every exit path cleans up -----------------
WORK=""
NSPAWN=""  # the systemd-nspawn process
LAUNCH=""  # what was started in the background: nspawn itself, or setsid --wait around it
SCOPE=""   # the transient scope, under a host systemd
LEADER=""
IN=()       # runs a command inside the container
CG_MOVE=() # cgroups made here for nspawn to run in
CG_DIRS=() # cgroups to remove after the container has stopped
CG_ALL=()
# nspawn --keep-unit creates payload/ and supervisor/ cgroups next to itself and leaves them behind.
# Without a systemd on the host, nspawn runs in a cgroup of its own made here (so concurrent runs
# do not share payload/) that is removed afterwards; under a host systemd, in a delegated
# transient scope that systemd removes.
cg_prepare() {
	local line rel base d
	while IFS= read -r line; do
		case $line in
		*:name=systemd:*) base=/sys/fs/cgroup/systemd rel=${line#*:name=systemd:} ;;
		0::*)
			rel=${line#0::}
			if [ -d /sys/fs/cgroup/unified ]; then base=/sys/fs/cgroup/unified; else base=/sys/fs/cgroup; fi
			;;
		*) continue ;;
		esac
		[ -f "$base/cgroup.procs" ] || continue
		case $rel in */..*) continue ;; esac # we are in a cgroup namespace: not ours to change
		d=$base${rel%/}/liveevents-test.$$
		if mkdir "$d" 2>/dev/null; then
			CG_MOVE+=("$d")
			CG_DIRS+=("$d")
		else # nspawn will create payload/ and supervisor/ where we are: remove those if new
			for d in "$base${rel%/}/payload" "$base${rel%/}/supervisor"; do
				[ -e "$d" ] || CG_DIRS+=("$d")
			done
		fi
	done </proc/self/cgroup
	CG_ALL=("${CG_DIRS[@]}")
}
cg_cleanup() {
	local d
	for d in "${CG_DIRS[@]}"; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		[ -d "$d" ] && note "could not remove cgroup $d"
	done
	CG_DIRS=()
}
children_of() {
	local f pid rest ppid
	for f in /proc/[0-9]*/stat; do
		read -r rest 2>/dev/null <"$f" || continue
		pid=${rest%% *}
		rest=${rest##*) }
		ppid=$(echo "$rest" | cut -d' ' -f2)
		[ "$ppid" = "$1" ] && echo "$pid"
	done
}
NSPAWN_RC=""
shutdown_container() {
	[ -n "$NSPAWN" ] || return 0
	if kill -0 "$NSPAWN" 2>/dev/null && [ -n "$LEADER" ]; then
		timeout 10 nsenter -t "$LEADER" -a systemctl poweroff --no-block >/dev/null 2>&1
	fi
	for _ in $(seq 300); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$NSPAWN" 2>/dev/null; then
		note "poweroff timed out: SIGTERM to systemd-nspawn $NSPAWN"
		kill -TERM "$NSPAWN"
		for _ in $(seq 50); do kill -0 "$NSPAWN" 2>/dev/null || break; sleep 0.1; done
	fi
	if kill -0 "$NSPAWN" 2>/dev/null; then
		note "SIGKILL to systemd-nspawn $NSPAWN"
		kill -KILL "$NSPAWN"
	fi
	wait "$LAUNCH" 2>/dev/null
	NSPAWN_RC=$?
	NSPAWN=""
	LAUNCH=""
	sleep 0.2
	cg_cleanup
}
on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	shutdown_container
	[ -n "$WORK" ] && rm -rf "$WORK"
	exit $rc
}
trap on_exit EXIT
trap 'echo "Bail out! interrupted"; exit 130' INT TERM HUP

[ "$(id -u)" = 0 ] || {
	echo "1..0 # SKIP must run as root (boots systemd in a systemd-nspawn container)"
	exit 0
}
[ -x "$BIN" ] || bail "no executable $BIN (build first: make -j2, or set LIVEEVENTSD)"
if [ -n "${LIVEEVENTS_UNIT:-}" ]; then
	[ -f "$LIVEEVENTS_UNIT" ] || bail "LIVEEVENTS_UNIT=$LIVEEVENTS_UNIT is not a file"
else
	[ -f "$UNIT_IN" ] || bail "no $UNIT_IN"
fi

# --- host tools ----------------------------------------------------------------------------------
need=()
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
	note "apt-get install ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q "${need[@]}" >/tmp/liveevents-test-apt.$$.log 2>&1 ||
		{ apt-get update -q >>/tmp/liveevents-test-apt.$$.log 2>&1 &&
			apt-get install -y -q "${need[@]}" >>/tmp/liveevents-test-apt.$$.log 2>&1; } ||
		{ tail -20 /tmp/liveevents-test-apt.$$.log | diag; bail "cannot install ${need[*]}"; }
	rm -f /tmp/liveevents-test-apt.$$.log
fi

# One test run per rootfs at a time (the lock dies with this shell).
mkdir -p "$(dirname "$ROOTFS")"
exec 9>"$ROOTFS.lock"
flock -n 9 || bail "another run is using $ROOTFS ($ROOTFS.lock is held)"

# --- the rootfs (cached) -------------------------------------------------------------------------
# The archive the host itself uses (deb822 sources first, then sources.list); debootstrap's own
# default otherwise.
host_mirror() {
	local m
	m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
		grep -v -e security -e '^cdrom:' | head -1)
	[ -n "$m" ] || m=$(awk '$1 == "deb" && $0 !~ /security/ && $2 !~ /^cdrom:/ {
		for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null)
	echo "$m"
}
if [ "$(cat "$ROOTFS/.liveevents-test" 2>/dev/null)" != "$ROOTFS_STAMP" ]; then
	MIRROR=$(host_mirror)
	note "building the rootfs $ROOTFS (debootstrap bookworm minbase${MIRROR:+ from $MIRROR})"
	t0=$(date +%s.%N)
	NEW=$ROOTFS.new
	rm -rf "$NEW"
	debootstrap --variant=minbase --include="$ROOTFS_PKGS" bookworm "$NEW" ${MIRROR:+"$MIRROR"} \
		>"$ROOTFS.debootstrap.log" 2>&1 ||
		{ tail -20 "$ROOTFS.debootstrap.log" | diag; rm -rf "$NEW"; bail "debootstrap failed (log: $ROOTFS.debootstrap.log)"; }
	echo liveevents-test >"$NEW/etc/hostname"
	# Nothing periodic that could run apt, fsck or trims during a test.
	for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
		ln -sf /dev/null "$NEW/etc/systemd/system/$t"
	done
	mkdir -p "$NEW/var/log/journal"
	echo "$ROOTFS_STAMP" >"$NEW/.liveevents-test"
	rm -rf "$ROOTFS"
	mv "$NEW" "$ROOTFS"
	note "rootfs built in $(elapsed "$t0") s ($(du -sh "$ROOTFS" | cut -f1))"
fi

# --- install the unit, the binary and its libraries; fresh state -----------------------------
WORK=$(mktemp -d /tmp/liveevents-systemd-test.XXXXXX)
if [ -n "${LIVEEVENTS_UNIT:-}" ]; then
	cp "$LIVEEVENTS_UNIT" "$WORK/$UNIT"
else
	sed "s|@sbindir@|$SBINDIR|g" "$UNIT_IN" >"$WORK/$UNIT"
fi
DEST=$(sed -n 's/^ExecStart=[-@:+!]*\([^[:space:]]*\).*/\1/p' "$WORK/$UNIT" | head -1)
case $DEST in /*) ;; *) bail "cannot find an absolute ExecStart= path in the unit";; esac

# Free TCP ports on the host (the container shares its network): outside the kernel's ephemeral
# range (where outgoing connections take their local ports), bound by no socket, distinct.
used_ports() {
	local f laddr port
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		while read -r _ laddr _; do
			port=${laddr##*:}
			echo $((16#$port))
		done < <(tail -n +2 "$f")
	done
}
listening_ports() {
	local f laddr st port
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		while read -r _ laddr _ st _; do
			[ "$st" = 0A ] || continue
			port=${laddr##*:}
			echo $((16#$port))
		done < <(tail -n +2 "$f")
	done
}
pick_port() {
	local p used lo=20000 hi=32767 elo ehi
	read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { elo=32768 ehi=60999; }
	if [ "$elo" -le $((lo + 1000)) ]; then lo=$((ehi + 1)) hi=65000; else hi=$((elo - 1)); fi
	[ $hi -gt $lo ] || { lo=20000 hi=65000; }
	used=" $(used_ports | tr '\n' ' ') $* "
	for _ in $(seq 200); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		case $used in *" $p "*) continue ;; esac
		echo "$p"
		return 0
	done
	return 1
}
P_WEBHOOK=$(pick_port) && P_DASH=$(pick_port "$P_WEBHOOK") && P_OTHER1=$(pick_port "$P_WEBHOOK" "$P_DASH") &&
	P_OTHER2=$(pick_port "$P_WEBHOOK" "$P_DASH" "$P_OTHER1") || bail "no free ports"

# State from an earlier (perhaps interrupted) run must not leak into this one.
rm -rf "$ROOTFS/etc/systemd/system/$UNIT.d" "$ROOTFS/var/lib/private/liveevents" "$ROOTFS/var/lib/liveevents" \
	"$ROOTFS/etc/systemd/system/multi-user.target.wants/$UNIT"
install -D -m 0644 "$WORK/$UNIT" "$ROOTFS/etc/systemd/system/$UNIT"
install -D -m 0755 "$BIN" "$ROOTFS$DEST"
# Shared libraries the rootfs lacks (libevent, ...): copy them in at the same paths.
ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u | while read -r lib; do
	[ -e "$ROOTFS$lib" ] && continue
	real=$(readlink -f "$lib")
	install -D -m 0644 "$real" "$ROOTFS$real"
	[ "$real" = "$lib" ] || ln -sf "$real" "$ROOTFS$lib"
	note "copied $lib into the rootfs"
done
cat >"$ROOTFS/etc/default/liveevents" <<EOF
# written by tests/systemd/test_unit.sh
LIVEEVENTS_OPTS="--webhook-listen 127.0.0.1:$P_WEBHOOK --dashboard-listen 127.0.0.1:$P_DASH"
EOF
note "unit $UNIT (ExecStart $DEST), webhook port $P_WEBHOOK, dashboard port $P_DASH, rootfs $ROOTFS"

# --- static checks -------------------------------------------------------------------------------
# verify exits 0 even on unknown keys and bad values (it only prints them): any output is a failure.
# --man=no: the rootfs has neither man nor our page (make install puts it in $(mandir)).
vout=$(systemd-analyze verify --man=no --root="$ROOTFS" "/etc/systemd/system/$UNIT" 2>&1)
vrc=$?
if [ $vrc = 0 ] && [ -z "$vout" ]; then
	ok "systemd-analyze verify prints nothing"
else
	not_ok "systemd-analyze verify prints nothing (rc $vrc)"
	echo "$vout" | diag
fi
sout=$(systemd-analyze security --offline=yes --root="$ROOTFS" "/etc/systemd/system/$UNIT" 2>&1)
exposure=$(echo "$sout" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -1)
if [ -n "$exposure" ]; then
	note "systemd-analyze security --offline=yes: overall exposure $exposure ($(echo "$sout" | tail -1 | sed 's/.*: [0-9.]* //'))"
	echo "$sout" | grep -E '^(- |✗ )' | sed 's/  */ /g; s/^/  /' | diag
fi
if [ -n "$exposure" ] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }'; then
	ok "systemd-analyze security exposure $exposure <= $MAX_EXPOSURE"
else
	not_ok "systemd-analyze security exposure '${exposure:-?}' <= $MAX_EXPOSURE"
	echo "$sout" | tail -5 | diag
fi

# Test-only drop-in: a system call outside the filter kills the process (SIGSYS) instead of
# returning EPERM, so that a too-narrow filter cannot hide behind error handling.
mkdir -p "$ROOTFS/etc/systemd/system/$UNIT.d"
cat >"$ROOTFS/etc/systemd/system/$UNIT.d/50-test-seccomp.conf" <<EOF
[Service]
SystemCallErrorNumber=kill
EOF

# --- boot ----------------------------------------------------------------------------------------
BOOTLOG=$WORK/nspawn.log
NSPAWN_ARGS=(-D "$ROOTFS" --boot --register=no --keep-unit --console=passive --machine=liveevents-test)
# setsid: a Ctrl-C on the terminal must reach this script (which powers the container off), not
# nspawn. setsid execs in place, or forks and --wait's when it is a process group leader.
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
	SCOPE=liveevents-test-$$.scope
	setsid --wait systemd-run --scope --quiet --collect -p Delegate=yes --unit="$SCOPE" \
		systemd-nspawn "${NSPAWN_ARGS[@]}" >"$BOOTLOG" 2>&1 </dev/null &
else
	cg_prepare
	(
		for d in "${CG_MOVE[@]}"; do echo "$BASHPID" >"$d/cgroup.procs"; done
		exec setsid --wait systemd-nspawn "${NSPAWN_ARGS[@]}"
	) >"$BOOTLOG" 2>&1 </dev/null &
fi
LAUNCH=$!
NSPAWN=$LAUNCH
t0=$(date +%s.%N)
for _ in $(seq 50); do
	[ "$(cat "/proc/$NSPAWN/comm" 2>/dev/null)" = systemd-nspawn ] && break
	for p in $(children_of "$LAUNCH"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd-nspawn ] && NSPAWN=$p
	done
	[ "$NSPAWN" != "$LAUNCH" ] && break
	kill -0 "$LAUNCH" 2>/dev/null || break
	sleep 0.1
done
# The container's PID 1 is nspawn's child whose comm is "systemd"; wait for its private bus.
for _ in $(seq 300); do
	LEADER=""
	for p in $(children_of "$NSPAWN"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && LEADER=$p
	done
	[ -n "$LEADER" ] && nsenter -t "$LEADER" -a test -S /run/systemd/private 2>/dev/null && break
	kill -0 "$NSPAWN" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$LEADER" ]; then
	not_ok "container boots"
	tail -30 "$BOOTLOG" | diag
	bail "systemd did not start in the container"
fi
IN=(nsenter -t "$LEADER" -a)
state=$(timeout 60 "${IN[@]}" systemctl is-system-running --wait 2>/dev/null)
case $state in
running | degraded)
	ok "container boots (is-system-running: $state, $(elapsed "$t0") s)"
	[ "$state" = degraded ] && "${IN[@]}" systemctl --failed --no-pager 2>&1 | diag
	;;
*)
	not_ok "container boots (is-system-running: '$state')"
	tail -30 "$BOOTLOG" | diag
	bail "container did not boot"
	;;
esac

# --- helpers inside the container ----------------------------------------------------------------
sc() { timeout 60 "${IN[@]}" systemctl "$@"; }
prop() { sc show -P "$1" "$UNIT" 2>/dev/null; }
journal() { timeout 30 "${IN[@]}" journalctl -b -u "$UNIT" --no-pager "$@" 2>/dev/null; }
unit_diag() {
	sc status "$UNIT" --no-pager -l 2>&1 | diag
	echo "--- journal (last 30 lines)" | diag
	journal -n 30 -o short-monotonic | diag
}
# worker ROLE: the pid (in the container) of the unit's worker with that comm, a child of MainPID
worker() {
	"${IN[@]}" sh -c '
		main=$(systemctl show -P MainPID "$2")
		for d in /proc/[0-9]*; do
			[ "$(cat "$d/comm" 2>/dev/null)" = "$1" ] || continue
			read -r pid comm st ppid rest <"$d/stat" || continue
			[ "$ppid" = "$main" ] && grep -q "/system.slice/$2\$" "$d/cgroup" && echo "$pid"
		done' sh "$1" "$UNIT" 2>/dev/null | head -1
}
signal() { "${IN[@]}" sh -c 'kill -"$1" "$2"' sh "$@"; } # signal SIG PID (the rootfs has no /bin/kill)
post() { # post BODY -> HTTP status; the response body in $WORK/resp
	curl -s -m "${2:-5}" -o "$WORK/resp" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "$1" "http://127.0.0.1:$P_WEBHOOK/webhook" 2>/dev/null
}
# The dashboard token the daemon made in its StateDirectory at its first start (DynamicUser= puts it
# under /var/lib/private).
TOKEN_FILE=$ROOTFS/var/lib/private/liveevents/arena.token
token() { cat "$TOKEN_FILE" 2>/dev/null; }
calls() { curl -s -m 5 -H "Authorization: Bearer $(token)" "http://127.0.0.1:$P_DASH/api/calls" 2>/dev/null; }
has_call() { calls | grep -q "\"id\":\"$1\""; }
serves() { # both ports answer /healthz
	curl -s -f -m 2 -o /dev/null "http://127.0.0.1:$P_WEBHOOK/healthz" &&
		curl -s -f -m 2 -o /dev/null "http://127.0.0.1:$P_DASH/healthz"
}
wait_active() { # wait_active SECONDS
	for _ in $(seq $(($1 * 10))); do
		[ "$(sc is-active "$UNIT" 2>/dev/null)" = active ] && serves && return 0
		sleep 0.1
	done
	return 1
}
event() { # event CALL_ID TYPE STATUS: a small status-update webhook body
	printf '{"message":{"type":"%s","timestamp":%s,"status":"%s","call":{"id":"%s","status":"%s"},"customer":{"number":"+15550100777"}}}' \
		"$2" "$(date +%s%3N)" "$3" "$1" "$3"
}
RUNID=$(printf '%04x%04x' $RANDOM $RANDOM)
CALL1=sd${RUNID}a1
CALL2=sd${RUNID}b2
CALL3=sd${RUNID}c3
CALL4=sd${RUNID}d4

# --- start: Type=notify --------------------------------------------------------------------------
# Enabled, so that multi-user.target keeps the unit loaded: an unreferenced inactive unit is garbage-
# collected right away and `systemctl show` would no longer report its ExecMainStatus after a stop.
sc enable --quiet "$UNIT" || not_ok "systemctl enable $UNIT ([Install] section)"
t0=$(date +%s.%N)
if sc start "$UNIT"; then
	ok "systemctl start $UNIT succeeds (READY=1 received, $(elapsed "$t0") s)"
else
	not_ok "systemctl start $UNIT succeeds"
	unit_diag
	bail "the unit does not start"
fi
check "unit is active" test "$(sc is-active "$UNIT")" = active
status_text=$(prop StatusText)
note "StatusText: $status_text"
check "StatusText is set by the daemon (names the webhook port)" \
	eval 'case $status_text in *"127.0.0.1:$P_WEBHOOK"*) true;; *) false;; esac'
MAIN1=$(prop MainPID)
note "MainPID $MAIN1, ingest $(worker ingest), query $(worker query)"

# The sandbox really applies to all three processes: dynamic UID, no capabilities, no_new_privs,
# a seccomp filter, and (in the master's mount namespace) a read-only OS with a writable state
# directory, an empty /home and no /proc/sys.
sandbox=$("${IN[@]}" sh -c '
	m=$(systemctl show -P MainPID "$1")
	for p in $m $(cat /sys/fs/cgroup/systemd/system.slice/"$1"/cgroup.procs /sys/fs/cgroup/system.slice/"$1"/cgroup.procs 2>/dev/null | sort -u); do
		echo "$p $(cat /proc/$p/comm)" $(grep -E "^(Uid|NoNewPrivs|Seccomp|CapEff|CapBnd):" /proc/$p/status | tr -s "\t" " ")
	done | sort -u
	nsenter -t "$m" -m sh -c "
		touch /usr/.liveevents-test 2>/dev/null && rm -f /usr/.liveevents-test && echo FS: /usr writable
		touch /etc/.liveevents-test 2>/dev/null && rm -f /etc/.liveevents-test && echo FS: /etc writable
		touch /var/lib/liveevents/.t 2>/dev/null && rm -f /var/lib/liveevents/.t || echo FS: state directory not writable
		[ -z \"\$(ls -A /home /root 2>/dev/null | grep -v -e \"^/\" -e \"^\$\")\" ] || echo FS: /home or /root visible
		[ ! -e /proc/sys/kernel ] || echo FS: /proc/sys visible
	"' sh "$UNIT" 2>&1)
echo "$sandbox" | grep -v '^FS:' | diag
bad=$(echo "$sandbox" | awk '
	/^FS:/ { print; next }
	$2 == "(liveeventsd)" || $2 == "liveeventsd" || $2 == "ingest" || $2 == "query" {
		n++
		for (i = 3; i <= NF; i++) {
			if ($i == "Uid:" && ($(i + 1) < 61184 || $(i + 1) > 65519)) print $2 ": uid " $(i + 1)
			if ($i == "NoNewPrivs:" && $(i + 1) != 1) print $2 ": no_new_privs off"
			if ($i == "Seccomp:" && $(i + 1) != 2) print $2 ": no seccomp filter"
			if (($i == "CapEff:" || $i == "CapBnd:") && $(i + 1) !~ /^0+$/) print $2 ": " $i " " $(i + 1)
		}
	}
	END { if (n != 3) print "expected 3 processes, saw " n + 0 }')
if [ -z "$bad" ]; then
	ok "sandbox in effect (dynamic uid, no caps, no_new_privs, seccomp, read-only OS, writable state)"
else
	not_ok "sandbox in effect"
	echo "$bad" | diag
fi

# --- a webhook from the host ----------------------------------------------------------------------
code=$(post "$(event "$CALL1" status-update queued)")
if [ "$code" = 200 ] && grep -q '"status":"ok"' "$WORK/resp"; then
	ok "POST /webhook from the host: 200 {\"status\":\"ok\"}"
else
	not_ok "POST /webhook from the host: 200 (got '$code': $(head -c 200 "$WORK/resp" 2>/dev/null))"
	unit_diag
fi
check "GET /api/calls lists the call" has_call "$CALL1"
tok=$(token)
tmode=$(stat -c '%a' "$TOKEN_FILE" 2>/dev/null)
if [ ${#tok} = 43 ] && [ "$tmode" = 600 ]; then
	ok "the dashboard token was made in the state directory, mode 600"
else
	not_ok "the dashboard token was made in the state directory, mode 600 (length ${#tok}, mode '$tmode')"
fi
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P_DASH/api/calls")
check "GET /api/calls without the token: 401" [ "$code" = 401 ]

# --- the journal ---------------------------------------------------------------------------------
sleep 0.3 # let journald take in the stream
jall=$(journal -o cat)
jnotice=$(journal -p notice -o cat)
if echo "$jall" | grep -q 'master: ready: ' && echo "$jall" | grep -q "ingest: .*$CALL1"; then
	ok "journal holds the ready line and the event line"
else
	not_ok "journal holds the ready line and the event line"
	echo "$jall" | tail -20 | diag
fi
if [ -n "$tok" ] && [ "$(echo "$jnotice" | grep -c "dashboard: open http://127.0.0.1:$P_DASH/?token=$tok\$")" = 1 ] &&
	[ "$(echo "$jall" | grep -c -- "$tok")" = 1 ]; then
	ok "journalctl -p notice shows the dashboard URL with its token, once; no other line has the token"
else
	not_ok "journalctl -p notice shows the dashboard URL with its token, once"
	echo "$jall" | grep -n "dashboard" | sed "s/$tok/TOKEN/g" | diag
fi
if echo "$jnotice" | grep -q 'master: ready: ' && ! echo "$jnotice" | grep -q "$CALL1" &&
	! echo "$jnotice" | grep -q 'ingest: accepting webhooks'; then
	ok "journalctl -p notice shows the ready line but no info lines (<N> prefixes parsed)"
else
	not_ok "journalctl -p notice shows the ready line but no info lines"
	echo "$jnotice" | tail -20 | diag
fi
if echo "$jall" | grep -q '^<[0-7]>'; then
	not_ok "no raw <N> prefixes in the journal"
	echo "$jall" | grep '^<[0-7]>' | head -5 | diag
else
	ok "no raw <N> prefixes in the journal"
fi
# _PID and PRIORITY of the event line, from the JSON export
evjson=$(journal -o json --output-fields=_PID,PRIORITY,MESSAGE | grep "$CALL1" | head -1)
evpid=$(echo "$evjson" | sed -n 's/.*"_PID":"\([0-9]*\)".*/\1/p')
evprio=$(echo "$evjson" | sed -n 's/.*"PRIORITY":"\([0-9]*\)".*/\1/p')
note "event line: _PID=$evpid PRIORITY=$evprio (MainPID $MAIN1)"
if [ -n "$evpid" ] && [ "$evpid" != "$MAIN1" ] && [ "$evpid" = "$(worker ingest)" ] && [ "$evprio" = 6 ]; then
	ok "the event line has the ingest worker's _PID (not MainPID) and PRIORITY 6"
else
	not_ok "the event line has the ingest worker's _PID (not MainPID) and PRIORITY 6"
	echo "$evjson" | diag
fi

# --- kill -9 the ingest worker: the master restarts it inside the unit ---------------------------
ING=$(worker ingest)
if [ -z "$ING" ]; then
	not_ok "ingest worker found in the unit's cgroup"
	unit_diag
else
	ok "ingest worker found in the unit's cgroup (pid $ING)"
	NR0=$(prop NRestarts)
	signal KILL "$ING"
	t0=$(date +%s.%N)
	code=""
	for _ in $(seq 40); do
		code=$(post "$(event "$CALL2" status-update ongoing)" 2)
		[ "$code" = 200 ] && break
		sleep 0.05
	done
	dt=$(elapsed "$t0")
	if [ "$code" = 200 ] && awk -v d="$dt" 'BEGIN { exit !(d <= 1.0) }'; then
		ok "webhooks served again ${dt} s after kill -9 of ingest"
	else
		not_ok "webhooks served again within 1 s after kill -9 of ingest (HTTP '$code' after $dt s)"
		unit_diag
	fi
	ING2=$(worker ingest)
	check "MainPID unchanged ($MAIN1), NRestarts unchanged, new ingest pid ($ING -> ${ING2:-none})" \
		test "$(prop MainPID)" = "$MAIN1" -a "$(prop NRestarts)" = "$NR0" -a -n "$ING2" -a "$ING2" != "$ING"
	check "data survived: both calls listed" eval 'has_call "$CALL1" && has_call "$CALL2"'
	check "journal names the killed worker" eval 'journal -o cat | grep -q "ingest (pid $ING) was killed by signal 9"'
	status_text=$(prop StatusText)
	note "StatusText after the worker restart: $status_text"
	check "StatusText is back to normal once the worker serves again" \
		eval 'case $status_text in "webhooks on "*) true;; *) false;; esac'
fi

# --- one instance per arena ----------------------------------------------------------------------
second=$(timeout 10 "${IN[@]}" "$DEST" --arena /var/lib/liveevents/arena \
	--webhook-listen "127.0.0.1:$P_OTHER1" --dashboard-listen "127.0.0.1:$P_OTHER2" 2>&1)
src=$?
note "second instance: exit $src: $(echo "$second" | tail -1)"
if [ $src = 1 ] && echo "$second" | grep -q '/var/lib/liveevents/arena' && echo "$second" | grep -qi 'in use'; then
	ok "a second instance on the same arena is refused (exit 1, names the arena)"
else
	not_ok "a second instance on the same arena is refused (exit $src)"
	echo "$second" | diag
fi
check "the unit is untouched by the refused instance" eval '[ "$(prop MainPID)" = "$MAIN1" ] && serves'

# --- restart of the unit: the StateDirectory arena persists ------------------------------------
t0=$(date +%s.%N)
if sc restart "$UNIT" && wait_active 10; then
	ok "systemctl restart ($(elapsed "$t0") s, MainPID $MAIN1 -> $(prop MainPID))"
else
	not_ok "systemctl restart"
	unit_diag
fi
check "calls posted before the restart are still listed" eval 'has_call "$CALL1" && has_call "$CALL2"'
arena=$ROOTFS/var/lib/private/liveevents/arena
if [ -f "$arena" ] && [ "$(readlink "$ROOTFS/var/lib/liveevents")" = private/liveevents ]; then
	uid=$(stat -c %u "$arena")
	ok "arena is a file in /var/lib/private/liveevents ($(stat -c '%s bytes, mode %a' "$arena"), uid $uid; /var/lib/liveevents -> private/liveevents)"
	check "arena belongs to a dynamic user (61184..65519) and is not world-readable" \
		eval '[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] && [ "$(stat -c %a "$arena")" = 600 ]'
else
	not_ok "arena is a file in /var/lib/private/liveevents"
	ls -la "$ROOTFS/var/lib/" "$ROOTFS/var/lib/private/" 2>&1 | diag
fi
check "nothing of ours in the service's /dev/shm" \
	eval 'shm=$("${IN[@]}" sh -c "nsenter -t \$(systemctl show -P MainPID $UNIT) -m ls -A /dev/shm") && [ -z "$shm" ]'

# --- crash loop: past --restart-limit the master exits 1 and systemd's Restart= takes over -------
sed -i 's/^LIVEEVENTS_OPTS="/LIVEEVENTS_OPTS="--restart-limit 2 /' "$ROOTFS/etc/default/liveevents"
if sc restart "$UNIT" && wait_active 10; then
	MAIN3=$(prop MainPID)
	NR3=$(prop NRestarts)
	killed=0
	for _ in 1 2 3; do # the third death within the interval is one too many
		ING=""
		for _ in $(seq 40); do
			ING=$(worker ingest)
			[ -n "$ING" ] && [ "$(prop MainPID)" = "$MAIN3" ] && break
			sleep 0.1
		done
		[ -n "$ING" ] && [ "$(prop MainPID)" = "$MAIN3" ] || break
		signal KILL "$ING" && killed=$((killed + 1))
		for _ in $(seq 40); do
			[ "$(worker ingest)" != "$ING" ] && break
			sleep 0.05
		done
	done
	restarted=0
	for _ in $(seq 100); do
		mp=$(prop MainPID)
		if [ "$(prop NRestarts)" -gt "$NR3" ] && [ "$mp" != 0 ] && [ "$mp" != "$MAIN3" ] && serves; then
			restarted=1
			break
		fi
		sleep 0.1
	done
	jall=$(journal -o cat)
	if [ $restarted = 1 ] && echo "$jall" | grep -q 'ingest was restarted 2 times within 60 s and died again: giving up' &&
		echo "$jall" | grep -q 'Main process exited, code=exited, status=1/FAILURE'; then
		ok "after $killed quick ingest deaths the master exits 1 and Restart= brings the unit back (MainPID $MAIN3 -> $mp)"
	else
		not_ok "after $killed quick ingest deaths the master exits 1 and Restart= brings the unit back"
		unit_diag
	fi
	check "calls still listed after the crash loop" eval 'has_call "$CALL1" && has_call "$CALL2"'
else
	not_ok "restart with --restart-limit 2"
	unit_diag
fi
sed -i 's/^LIVEEVENTS_OPTS="--restart-limit 2 /LIVEEVENTS_OPTS="/' "$ROOTFS/etc/default/liveevents"

# --- a hung worker: the master restarts it, the unit and its ports stay up ------------------------
# TimeoutAbortSec: a stopped master cannot act on the watchdog's SIGABRT, so systemd's SIGKILL must
# follow soon (below).
cat >"$ROOTFS/etc/systemd/system/$UNIT.d/60-test-watchdog.conf" <<EOF
[Service]
WatchdogSec=3s
TimeoutAbortSec=2s
EOF
sc daemon-reload
sc restart "$UNIT" && wait_active 10 || { not_ok "restart with WatchdogSec=3s"; unit_diag; }
check "WatchdogUSec is 3 s" test "$(prop WatchdogUSec)" = 3s
post "$(event "$CALL3" status-update queued)" >/dev/null
MAIN2=$(prop MainPID)
NR0=$(prop NRestarts)
QRY=$(worker query)
sleep 2 # a few healthy watchdog periods first: the master pings while both workers heartbeat
if [ -z "$QRY" ] || [ "$(prop MainPID)" != "$MAIN2" ]; then
	not_ok "the unit keeps running with WatchdogSec=3s while the workers are healthy"
	unit_diag
else
	ok "the unit keeps running with WatchdogSec=3s while the workers are healthy"
	signal STOP "$QRY"
	t0=$(date +%s.%N)
	back=0
	for _ in $(seq $((WATCHDOG_LIMIT * 5))); do
		sleep 0.2
		q=$(worker query)
		if [ -n "$q" ] && [ "$q" != "$QRY" ] && serves; then
			back=1
			break
		fi
	done
	dt=$(elapsed "$t0")
	if [ $back = 1 ] && [ "$(prop MainPID)" = "$MAIN2" ] && [ "$(prop NRestarts)" = "$NR0" ]; then
		ok "a SIGSTOPped query worker is replaced by the master ${dt} s later; the unit was not restarted"
	else
		not_ok "a SIGSTOPped query worker is replaced by the master within $WATCHDOG_LIMIT s (back=$back after $dt s, MainPID $MAIN2 -> $(prop MainPID), NRestarts $NR0 -> $(prop NRestarts))"
		unit_diag
		signal CONT "$QRY" 2>/dev/null
	fi
	check "journal names the hung worker" eval 'journal -o cat | grep -q "query (pid $QRY) has not reported for"'
	check "systemd's watchdog did not fire for a hung worker" eval '! journal -o cat | grep -qi "watchdog timeout"'
	check "all calls still listed after the worker was replaced" \
		eval 'has_call "$CALL1" && has_call "$CALL2" && has_call "$CALL3"'
fi

# --- a hung master: nothing feeds the watchdog, systemd restarts the unit ------------------------
MAIN3=$(prop MainPID)
NR1=$(prop NRestarts)
signal STOP "$MAIN3"
t0=$(date +%s.%N)
restarted=0
for _ in $(seq $((WATCHDOG_LIMIT * 5))); do
	sleep 0.2
	nr=$(prop NRestarts)
	mp=$(prop MainPID)
	if [ "$nr" -gt "$NR1" ] && [ "$mp" != 0 ] && [ "$mp" != "$MAIN3" ]; then
		restarted=1
		break
	fi
done
dt=$(elapsed "$t0")
# The last ping came at most WatchdogSec/4 before the SIGSTOP: a restart much sooner has another cause.
if [ $restarted = 1 ] && awk -v d="$dt" 'BEGIN { exit !(d >= 2.0) }'; then
	ok "watchdog timeout restarts the unit ${dt} s after SIGSTOP of the master (NRestarts $NR1 -> $nr, MainPID $MAIN3 -> $mp)"
else
	not_ok "watchdog timeout restarts the unit 2..$WATCHDOG_LIMIT s after SIGSTOP of the master (restarted=$restarted after $dt s)"
	unit_diag
	signal CONT "$MAIN3" 2>/dev/null
fi
check "journal records the watchdog timeout" eval 'journal -o cat | grep -qi "watchdog timeout"'
check "serving again after the watchdog restart" wait_active 10
check "all calls still listed after the watchdog restart" \
	eval 'has_call "$CALL1" && has_call "$CALL2" && has_call "$CALL3"'
code=$(post "$(event "$CALL4" status-update queued)")
check "new webhooks accepted after the watchdog restart" eval '[ "$code" = 200 ] && has_call "$CALL4"'
rm -f "$ROOTFS/etc/systemd/system/$UNIT.d/60-test-watchdog.conf"
sc daemon-reload

# --- the system-call filter never fired ----------------------------------------------------------
jall=$(journal -o cat)
if echo "$jall" | grep -Eqi 'status=31/SYS|signal 31|bad system call'; then
	not_ok "no process was killed by the system-call filter"
	echo "$jall" | grep -Ei 'status=31/SYS|signal 31|bad system call' | diag
else
	ok "no process was killed by the system-call filter"
fi

# --- stop: SIGTERM to the master, clean exit 0 ---------------------------------------------------
t0=$(date +%s.%N)
sc stop "$UNIT"
dt=$(elapsed "$t0")
st_active=$(prop ActiveState)
st_code=$(prop ExecMainCode)
st_status=$(prop ExecMainStatus)
st_result=$(prop Result)
note "after stop: ActiveState=$st_active Result=$st_result ExecMainCode=$st_code ExecMainStatus=$st_status ($dt s)"
if [ "$st_active" = inactive ] && [ "$st_code" = 1 ] && [ "$st_status" = 0 ] && [ "$st_result" = success ] &&
	awk -v d="$dt" 'BEGIN { exit !(d <= 5) }'; then
	ok "systemctl stop: inactive, exit status 0, within $dt s"
else
	not_ok "systemctl stop: inactive, exit status 0, within 5 s"
	unit_diag
fi
jstop=$(journal -o cat | awk '/Stopping liveevents/ { b = "" } { b = b $0 "\n" } END { printf "%s", b }')
if echo "$jstop" | grep -q 'master: stopped' && ! echo "$jstop" | grep -Eqi 'SIGKILL|killing'; then
	ok "the master logged a clean stop, no SIGKILL needed"
else
	not_ok "the master logged a clean stop, no SIGKILL needed"
	echo "$jstop" | tail -20 | diag
fi
check "nothing left listening on the test ports" \
	eval '! listening_ports | grep -qx -e "$P_WEBHOOK" -e "$P_DASH"'

if [ "${LIVEEVENTS_KEEP_LOGS:-0}" = 1 ] || [ $FAILED -gt 0 ]; then
	echo "--- journalctl -b -u $UNIT" | diag
	journal -o short-monotonic | diag
fi

# --- poweroff ------------------------------------------------------------------------------------
t0=$(date +%s.%N)
shutdown_container
if [ "$NSPAWN_RC" = 0 ]; then
	ok "clean poweroff of the container ($(elapsed "$t0") s)"
else
	not_ok "clean poweroff of the container (systemd-nspawn exit $NSPAWN_RC)"
	tail -20 "$BOOTLOG" | diag
fi
leftover=""
for d in "${CG_ALL[@]}"; do [ -e "$d" ] && leftover="$leftover $d"; done
if [ -n "$SCOPE" ] && [ -n "$(systemctl list-units --all --no-legend "$SCOPE" 2>/dev/null)" ]; then
	leftover="$leftover $SCOPE"
fi
check "no cgroups left behind" test -z "$leftover"

echo "1..$N"
note "$((N - FAILED - TODO)) passed, $FAILED failed, $TODO known daemon bug(s) marked TODO, $(elapsed "$T_START") s"
[ $FAILED = 0 ]
