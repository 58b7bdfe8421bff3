#!/usr/bin/env bash
# Start a throw-away single-node Slurm cluster (munged + slurmctld + slurmd,
# Debian's slurm-wlm) for exp's Slurm tests, without systemd. Must run as
# root. Idempotent: daemons already running are left alone.
#
#   .ci/slurm/start.sh            # installs the packages if missing (apt)
#   source /tmp/exp-slurm/env     # SLURM_CONF for sbatch/squeue/exp
#   .ci/slurm/stop.sh             # stops the daemons
#
# Facts it relies on (Slurm 22.05, see docs/slurm.md): no slurmdbd, so
# finished jobs are read from squeue while MinJobAge keeps them;
# batch_sched_delay=0 or every job waits ~3 s; munged refuses a socket
# folder that is not world-executable.
set -euo pipefail

PREFIX=${EXP_SLURM_PREFIX:-/tmp/exp-slurm}
log() { printf '[exp-slurm %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
alive() { # alive PIDFILE NAME: the pid file names a live process called NAME
    local pid
    [ -s "$1" ] || return 1
    pid=$(tr -dc '0-9' <"$1")
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}
wait_for() { # wait_for SECONDS CMD...
    local end=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}

[ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root)"
missing=0
for b in slurmctld slurmd sbatch squeue scontrol munged; do command -v "$b" >/dev/null || missing=1; done
if [ "$missing" = 1 ]; then
    log "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
        || { apt-get update && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge; }; } \
        >/tmp/exp-slurm-apt.log 2>&1 || { tail -20 /tmp/exp-slurm-apt.log; die "apt-get install failed"; }
fi

mkdir -p "$PREFIX"/{etc,log,run,state/ctld,state/d,munge}
chmod 755 "$PREFIX" "$PREFIX/munge"
SOCKET=$PREFIX/munge/munge.socket
if ! alive "$PREFIX/run/munged.pid" munged; then
    [ -s "$PREFIX/munge/munge.key" ] || { dd if=/dev/urandom of="$PREFIX/munge/munge.key" bs=1024 count=1 status=none; chmod 400 "$PREFIX/munge/munge.key"; }
    rm -f "$SOCKET" "$SOCKET.lock"
    munged --key-file="$PREFIX/munge/munge.key" --socket="$SOCKET" \
        --pid-file="$PREFIX/run/munged.pid" --log-file="$PREFIX/log/munged.log" \
        --seed-file="$PREFIX/munge/seed" || die "munged failed: $(tail -5 "$PREFIX/log/munged.log")"
    wait_for 10 sh -c "munge -n -S '$SOCKET' | unmunge -S '$SOCKET'" || die "munge does not answer"
    log "munged up"
fi

NODE=$(hostname -s)
HW=$(slurmd -C | head -n1 | sed -e 's/^NodeName=[^ ]*//')
cat >"$PREFIX/etc/slurm.conf" <<CONF
ClusterName=exp-ci
SlurmctldHost=$NODE(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${EXP_SLURM_CTLD_PORT:-6817}
SlurmdPort=${EXP_SLURM_SLURMD_PORT:-6818}
StateSaveLocation=$PREFIX/state/ctld
SlurmdSpoolDir=$PREFIX/state/d
SlurmctldPidFile=$PREFIX/run/slurmctld.pid
SlurmdPidFile=$PREFIX/run/slurmd.pid
SlurmctldLogFile=$PREFIX/log/slurmctld.log
SlurmdLogFile=$PREFIX/log/slurmd.log
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$PREFIX/log/jobcomp.txt
MinJobAge=300
ReturnToService=2
KillWait=5
SchedulerParameters=batch_sched_delay=0
NodeName=$NODE NodeAddr=127.0.0.1$HW State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
: >"$PREFIX/etc/gres.conf"
export SLURM_CONF=$PREFIX/etc/slurm.conf
echo "export SLURM_CONF=$SLURM_CONF" >"$PREFIX/env"

if ! alive "$PREFIX/run/slurmctld.pid" slurmctld; then
    slurmctld -i || die "slurmctld failed: $(tail -5 "$PREFIX/log/slurmctld.log")"
    wait_for 30 sh -c "scontrol ping | grep -q 'is UP'" || die "slurmctld does not answer: $(tail -5 "$PREFIX/log/slurmctld.log")"
    log "slurmctld up"
fi
if ! alive "$PREFIX/run/slurmd.pid" slurmd; then
    slurmd -N "$NODE" || die "slurmd failed: $(tail -5 "$PREFIX/log/slurmd.log")"
    wait_for 10 alive "$PREFIX/run/slurmd.pid" slurmd || die "slurmd did not stay up"
    log "slurmd up"
fi
node_ready() {
    case "$(sinfo -h -n "$NODE" -o %T | head -n1)" in
        idle|mixed|allocated) return 0 ;;
        *drain*|down*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}
wait_for 60 node_ready || { sinfo -N -l; die "node $NODE not idle"; }
log "cluster ready; source $PREFIX/env"
