#!/usr/bin/env bash
# Usage: slurm/local-cluster.sh install | start [--gpus N] | stop | status
#
# A real SLURM cluster on this one machine, for fcdist's tests and CI: munge, MariaDB + slurmdbd
# (so sacct works as on a real cluster), slurmctld and two slurmd "nodes" (fcnode1, fcnode2, 2 CPUs
# each, optional fake GPUs). Runs as root, without systemd.
#   install          apt-get install the daemons (apt-get update only when something is missing)
#   start [--gpus N] start everything, wait until both nodes are idle and sacct answers, then print
#                    the `export SLURM_CONF=...` line; a cluster already up is left as it is
#   stop             stop what `start` started (by its pid files), cancelling jobs still running
#   status           say which daemon is up and show sinfo; exit 0 only if the whole cluster is up
# Environment:
#   FCDIST_SLURM_DIR   every config, spool, log, pid file and the MariaDB datadir (/tmp/fcdist-slurm)
#   FCDIST_SLURM_PORT  first of 5 TCP ports on 127.0.0.1 (6810): slurmctld, slurmdbd, MariaDB,
#                      fcnode1, fcnode2. Not SLURM's defaults (6817-6819), so a second cluster fits.
# Facts behind the choices: shared/SLURM-LOCAL.md.
set -euo pipefail

DIR=${FCDIST_SLURM_DIR:-/tmp/fcdist-slurm}
PORT=${FCDIST_SLURM_PORT:-6810}
CLUSTER=fcdist                       # ClusterName: lower case, also the slurmdbd cluster record
NODES=(fcnode1 fcnode2)
CTLD_PORT=$PORT DBD_PORT=$((PORT + 1)) DB_PORT=$((PORT + 2))
PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server mariadb-client)
CONF=$DIR/etc/slurm.conf
export SLURM_CONF=$CONF              # every client call below talks to this cluster, not /etc/slurm
export PATH=$PATH:/usr/sbin:/sbin    # the daemons live in sbin, which a CI shell may not have

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "local-cluster: $*" >&2; exit 1; }
say() { echo "local-cluster: $*"; }

need_root() { [[ $(id -u) == 0 ]] || die "must run as root (it starts munge, MariaDB and the SLURM daemons as root)"; }

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
    done
}

cmd_install() {
    need_root
    local missing
    missing=$(missing_packages)
    if [[ -z $missing ]]; then say "packages already installed"; return; fi
    say "installing:" $missing
    # No systemd here: a policy-rc.d that says 101 keeps the packages' postinst from starting the
    # stock daemons (a system MariaDB on :3306, a slurmctld with no config); `start` runs our own.
    local policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
        trap "rm -f $policy" EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive
    local log=$DIR/log/install.log
    mkdir -p "$DIR/log"
    # shellcheck disable=SC2086
    { apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends $missing; } \
        >"$log" 2>&1 || { logtail "$log"; die "apt-get failed"; }
    missing=$(missing_packages)
    [[ -z $missing ]] || die "still missing after apt-get install:" $missing
    say "installed"
}

# --- pid files: a daemon is "ours and up" when its pid file names a live process of that name ---
pidfile() { echo "$DIR/run/$1.pid"; }
alive() {  # alive NAME COMM: pid file NAME.pid names a live process whose comm is COMM
    local f pid
    f=$(pidfile "$1")
    [[ -s $f ]] || return 1
    pid=$(pid_of "$1")
    [[ $pid != - && -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]]
}
pid_of() {  # the pid in NAME.pid, or "-" when there is none (yet)
    local f p=
    f=$(pidfile "$1")
    [[ ! -s $f ]] || p=$(tr -dc 0-9 <"$f")
    echo "${p:--}"
}
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
logtail() { echo "--- last lines of $1:" >&2; tail -n 25 "$1" >&2 2>/dev/null || echo "(no log)" >&2; }

wait_for() {  # wait_for SECONDS WHAT LOG NAME CMD...: poll CMD until it succeeds; die with LOG's tail
    local secs=$1 what=$2 log=$3 name=$4 t0=$SECONDS pid  # after SECONDS, or at once when the
    shift 4                                               # process in pid file NAME.pid has exited
    until "$@" >/dev/null 2>&1; do
        pid=$(pid_of "$name")
        if [[ $pid != - && ! -d /proc/$pid ]]; then logtail "$log"; die "$what exited while starting"; fi
        if ((SECONDS - t0 >= secs)); then logtail "$log"; die "$what did not come up within ${secs}s"; fi
        sleep 0.5
    done
}

# --- configs: rewritten on every start from the arguments, so a start always matches this script ---
write_configs() {
    local gpus=$1 host mem_mb n
    host=$(hostname -s)
    # Each slurmd sees the whole machine; give each node half the memory so --mem requests make sense.
    mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
    mkdir -p "$DIR"/{etc,run,log,state,dev} "${NODES[@]/#/$DIR/spool/}"
    cat >"$CONF" <<EOF
# Written by slurm/local-cluster.sh start; edits are lost on the next start.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it starts again: 20 instead of 120 keeps
# requeue tests short (a step must still launch within 20 s of its credential, ample here).
AuthInfo=cred_expire=20
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
# No cgroups in a container: track processes through /proc, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
MailProg=/bin/true
# A node that was down comes back by itself once its slurmd registers again.
ReturnToService=2
EnforcePartLimits=ALL
# Jobs may requeue themselves (scontrol requeue \$SLURM_JOB_ID), as fcdist's templates do.
JobRequeue=1
# Short timers: tests should not wait for a real cluster's grace periods.
MinJobAge=30
KillWait=5
MessageTimeout=20
SlurmdTimeout=60
InactiveLimit=0
Waittime=0
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
EOF
    local gres=""
    if ((gpus > 0)); then
        # Fake GPUs: char devices like /dev/null (c 1 3). Without File= the nodes drain.
        echo "GresTypes=gpu" >>"$CONF"
        gres="Gres=gpu:$gpus"
        echo "AutoDetect=off" >"$DIR/etc/gres.conf"
        for node in "${NODES[@]}"; do
            mkdir -p "$DIR/dev/$node"
            for ((n = 0; n < gpus; n++)); do
                [[ -c $DIR/dev/$node/nvidia$n ]] || mknod "$DIR/dev/$node/nvidia$n" c 1 3
            done
            echo "NodeName=$node Name=gpu File=$DIR/dev/$node/nvidia[0-$((gpus - 1))]" >>"$DIR/etc/gres.conf"
        done
    else
        rm -f "$DIR/etc/gres.conf"
    fi
    n=0
    for node in "${NODES[@]}"; do
        n=$((n + 1))
        echo "NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$host Port=$((PORT + 2 + n)) CPUs=2 RealMemory=$mem_mb $gres State=UNKNOWN" >>"$CONF"
    done
    echo "PartitionName=debug Nodes=$(IFS=,; echo "${NODES[*]}") Default=YES MaxTime=INFINITE State=UP" >>"$CONF"

    # slurmdbd refuses a config that others can read (it holds the DB password).
    (umask 077; cat >"$DIR/etc/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    )
    chmod 600 "$DIR/etc/slurmdbd.conf"
}

# --- the daemons, in start order ---
start_munge() {
    if munge_ok; then return; fi   # the system's munged (or one started earlier) will do
    # munged runs as user munge and wants its run dir to belong to it.
    install -d -o munge -g munge -m 755 /run/munge "$DIR/munge"
    local log=$DIR/munge/munged.log   # munged wants its log owned by munge: stderr goes elsewhere
    runuser -u munge -- munged --pid-file="$DIR/munge/munged.pid" --log-file="$log" \
        </dev/null >>"$DIR/log/munged.out" 2>&1 || { cat "$DIR/log/munged.out" >&2; die "munged did not start"; }
    ln -sf "$DIR/munge/munged.pid" "$(pidfile munged)"
    wait_for 20 munged "$log" - munge_ok
}

db() { mysql --no-defaults --socket="$DIR/mysql/mysqld.sock" -u root "$@"; }
start_mariadb() {
    # mariadbd runs as user mysql: its socket, pid file and log live in the datadir it owns.
    if [[ ! -d $DIR/mysql/mysql ]]; then
        install -d -o mysql -g mysql "$DIR/mysql"
        mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
            >"$DIR/log/mariadb-install.log" 2>&1 || { logtail "$DIR/log/mariadb-install.log"; die "mariadb-install-db failed"; }
    fi
    # --no-defaults: ignore /etc/mysql, so a system MariaDB (port 3306, /run/mysqld) is not touched.
    setsid mysqld_safe --no-defaults --user=mysql --datadir="$DIR/mysql" --socket="$DIR/mysql/mysqld.sock" \
        --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$DIR/mysql/mysqld.pid" \
        --log-error="$DIR/mysql/error.log" </dev/null >>"$DIR/log/mysqld_safe.log" 2>&1 &
    echo $! >"$(pidfile mysqld_safe)"
    ln -sf "$DIR/mysql/mysqld.pid" "$(pidfile mysqld)"
    ln -sf "$DIR/mysql/error.log" "$DIR/log/mysqld.log"
    wait_for 60 MariaDB "$DIR/log/mysqld.log" mysqld_safe db -e 'select 1'
    db -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
           CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
           GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
    # slurmdbd has no -f: it reads slurmdbd.conf beside $SLURM_CONF.
    slurmdbd </dev/null >>"$DIR/log/slurmdbd.log" 2>&1 ||
        { logtail "$DIR/log/slurmdbd.log"; die "slurmdbd did not start"; }
    wait_for 60 slurmdbd "$DIR/log/slurmdbd.log" slurmdbd sacctmgr -n show cluster
    # slurmctld registers with slurmdbd under ClusterName, which must exist first.
    if [[ -z $(sacctmgr -n -P show cluster "$CLUSTER" format=cluster) ]]; then
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    fi
}

start_slurm() {
    slurmctld -f "$CONF" </dev/null >>"$DIR/log/slurmctld.log" 2>&1 ||
        { logtail "$DIR/log/slurmctld.log"; die "slurmctld did not start"; }
    wait_for 60 slurmctld "$DIR/log/slurmctld.log" slurmctld scontrol ping
    for node in "${NODES[@]}"; do
        slurmd -f "$CONF" -N "$node" </dev/null >>"$DIR/log/slurmd-$node.log" 2>&1 ||
            { logtail "$DIR/log/slurmd-$node.log"; die "slurmd $node did not start"; }
    done
    local t0=$SECONDS
    until [[ $(sinfo -h -N -o '%N %t' 2>/dev/null | awk '$2 == "idle"' | wc -l) == "${#NODES[@]}" ]]; do
        for node in "${NODES[@]}"; do
            local pid
            pid=$(pid_of "slurmd-$node")
            # Gone, or no pid file after 10 s (a slurmd that cannot bind its port dies before writing it).
            if [[ $pid != - && ! -d /proc/$pid ]] || { [[ $pid == - ]] && ((SECONDS - t0 > 10)); }; then
                logtail "$DIR/log/slurmd-$node.log"; die "slurmd $node exited while starting"
            fi
        done
        if ((SECONDS - t0 >= 60)); then
            sinfo -N -l >&2 || true
            for node in "${NODES[@]}"; do logtail "$DIR/log/slurmd-$node.log"; done
            logtail "$DIR/log/slurmctld.log"
            die "the nodes are not idle after 60s"
        fi
        sleep 0.5
    done
    wait_for 30 sacct "$DIR/log/slurmdbd.log" - sacct -n -X -a -S now
}

# The daemons start() may have started, in stop order: pid-file name, process name.
DAEMONS=("slurmd-${NODES[0]} slurmd" "slurmd-${NODES[1]} slurmd" "slurmctld slurmctld"
    "slurmdbd slurmdbd" "mysqld mariadbd" "mysqld_safe mysqld_safe" "munged munged")

cluster_up() {  # quiet check, the same one status and start use
    local d
    for d in "${DAEMONS[@]}"; do
        set -- $d
        [[ $1 == munged ]] && continue
        alive "$1" "$2" || return 1
    done
    munge_ok || return 1
    # Both nodes answer and are usable (idle, mixed or allocated; not down or drained).
    [[ $(timeout 30 sinfo -h -N -o '%t' 2>/dev/null | grep -cE '^(idle|mix|alloc|comp|resv)$') == "${#NODES[@]}" ]]
}

cmd_start() {
    local gpus=0 asked=""
    while (($#)); do
        case $1 in
            --gpus) gpus=${2:?--gpus needs a number} asked=1; shift 2 ;;
            --gpus=*) gpus=${1#--gpus=} asked=1; shift ;;
            *) die "unknown start option: $1 (see --help)" ;;
        esac
    done
    [[ $gpus =~ ^[0-9]+$ ]] || die "--gpus wants a number, got '$gpus'"
    need_root
    local missing
    missing=$(missing_packages)
    [[ -z $missing ]] || die "missing packages:" $missing "-- run: slurm/local-cluster.sh install"
    if cluster_up; then
        local have
        have=$(sinfo -h -o '%G' | sed -n 's/.*gpu:\([0-9]*\).*/\1/p' | head -1)
        [[ -z $asked ]] || ((${have:-0} == gpus)) || say "note: running with --gpus ${have:-0}, not $gpus; stop it first to change"
        say "already running ($DIR)"
    else
        # Half up (a daemon died, a node drained): restart the whole of it from a known point.
        if [[ -d $DIR/run ]]; then cmd_stop quiet; fi
        # A start that fails half-way stops what it started (its logs stay in $DIR/log).
        trap 'echo "local-cluster: start failed: stopping what it started" >&2; cmd_stop quiet' EXIT
        local t0=$SECONDS
        write_configs "$gpus"
        start_munge
        start_mariadb
        start_slurmdbd
        start_slurm
        trap - EXIT
        say "up in $((SECONDS - t0))s: nodes ${NODES[*]}, $gpus fake GPU(s) each, state in $DIR"
    fi
    echo "export SLURM_CONF=$CONF"
}

stop_pid() {  # stop_pid NAME COMM: SIGTERM, wait up to 30s, then SIGKILL
    alive "$1" "$2" || { rm -f "$(pidfile "$1")"; return 0; }
    local pid t0=$SECONDS
    pid=$(pid_of "$1")
    kill -TERM "$pid" 2>/dev/null || true
    while [[ -d /proc/$pid ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2"* ]]; do
        if ((SECONDS - t0 >= 30)); then say "$1 ($pid) ignored SIGTERM for 30s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
        sleep 0.2
    done
    rm -f "$(pidfile "$1")"
    [[ ${QUIET:-} ]] || say "stopped $1 ($pid)"
}

cmd_stop() {
    need_root
    [[ ${1:-} == quiet ]] && local QUIET=1
    if [[ -z $(ls -A "$DIR/run" 2>/dev/null) ]]; then [[ ${QUIET:-} ]] || say "nothing running in $DIR"; return 0; fi
    # Jobs still running have slurmstepd processes that outlive slurmd: cancel them first.
    if alive slurmctld slurmctld && [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
        say "cancelling jobs still in the queue: $(squeue -h -o %i | tr '\n' ' ')"
        squeue -h -o %i | xargs scancel 2>/dev/null || true
        local t0=$SECONDS
        while [[ -n $(squeue -h -t R,CG -o %i 2>/dev/null) ]] && ((SECONDS - t0 < 30)); do sleep 0.5; done
    fi
    local d
    for d in "${DAEMONS[@]}"; do
        set -- $d
        # mysqld_safe ignores SIGTERM and exits by itself once mysqld is down: just wait for it.
        if [[ $1 == mysqld_safe ]]; then
            local t0=$SECONDS
            while alive mysqld_safe mysqld_safe && ((SECONDS - t0 < 30)); do sleep 0.2; done
        fi
        stop_pid "$1" "$2"
    done
    [[ ${QUIET:-} ]] || say "stopped"
}

cmd_status() {
    local d rc=0
    for d in "${DAEMONS[@]}"; do
        set -- $d
        if alive "$1" "$2"; then
            printf '  %-16s up (pid %s)\n' "$1" "$(pid_of "$1")"
        elif [[ $1 == munged ]]; then
            if munge_ok; then echo "  munged           up (not started by this script)"; else echo "  munged           DOWN"; rc=1; fi
        else
            printf '  %-16s DOWN\n' "$1"
            rc=1
        fi
    done
    # sinfo against a dead slurmctld waits out MessageTimeout: ask only a live one.
    if ! alive slurmctld slurmctld; then
        echo "  sinfo: slurmctld is down"
    elif ! timeout 30 sinfo -N 2>/dev/null; then
        echo "  sinfo: no answer from slurmctld"
        rc=1
    fi
    ((rc != 0)) || cluster_up || rc=1
    if ((rc == 0)); then echo "cluster up: export SLURM_CONF=$CONF"; else echo "cluster NOT up ($DIR)"; fi
    return $rc
}

case ${1:-} in
    install) cmd_install ;;
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
