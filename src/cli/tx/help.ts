/** The help texts. Each sentence here is a promise the code keeps. */

export const APPLY_HELP = `kubectl tx apply: apply manifests as one transaction

Usage:
  kubectl tx apply -f FILE|DIR [-f ...] [-R] [-n NS] [--timeout DURATION]
                   [--dry-run=none|server|client]
                   [--server-side [--force-conflicts]] [--field-manager NAME]
                   [--no-prepare]
                   [--prune -l SELECTOR [--prune-allowlist G/V/KIND ...]]
                   [--kubeconfig FILE] [--context NAME]
  kubectl tx apply -k DIR [the same flags but -R]

What it does:
  1. Reads the manifests (YAML, several documents per file, or JSON; items
     of a List are applied one by one; empty documents are skipped), or
     with -k the objects 'kubectl kustomize DIR' renders. Your files are
     never changed.
  2. Creates a Transaction (kubetx.io/v1alpha1, named t- and 8 hex digits)
     as you, with your --timeout if you gave one, naming the objects
     (spec.prepare), and waits while kubetx prepares it: kubetx locks every
     object that does not exist yet, in a namespace a policy covers for
     you, so that kubectl's creates are admitted without a call to the
     apiserver (not with -l, which applies only part of the objects).
     If another transaction holds one of them, or one that exists,
     kubectl is stopped before it reads the objects, nothing is written,
     and the transaction rolls back. (A kubetx that has not prepared it
     within 10 s: kubectl runs unprepared.)
  3. Runs the real kubectl apply (started first, so that its own start
     overlaps the steps above) on a copy of the objects that it reads on its
     stdin (no file is written), each with the annotation
     kubetx.io/transaction: <id>, and shows kubectl's output; kubectl's
     messages name the copy "STDIN".
     While kubectl runs, renews the Transaction every 5 s (its
     spec.clientHeartbeat): kubetx keeps it open as long as kubectl runs,
     past the policy's maxOpenSeconds, and rolls it back about 15 s after
     the renewals stop.
  4. Tells kubetx whether kubectl succeeded (the Transaction's
     spec.clientState: Applied or Failed, with the end of kubectl's errors).
  5. Waits for kubetx to commit or roll back, then prints one line per member.
     If kubetx took part in none of the writes (no policy covers the
     namespace, or it exempts you or these kinds), says so and how a
     namespace is opted in, and deletes the empty Transaction.

Flags:
  -f, --filename FILE|DIR  a manifest file, '-' for stdin, or a directory
                           (its *.yaml, *.yml and *.json files); repeatable
  -k, --kustomize DIR      a kustomization directory instead of -f: the
                           objects kubectl's own kustomize renders from it
                           are applied as one transaction
  -R, --recursive          also read the directories inside a DIR
  -n, --namespace NS       passed to kubectl: objects that name no namespace
                           go to NS (default: the kubeconfig context's);
                           kubectl refuses objects that name another one
      --timeout DURATION   kubetx rolls the transaction back if kubectl has
                           not finished within it, even while kubectl tx
                           runs; 90, 30s, 2m, 1m30s; 1s to 1h. Default: none,
                           the transaction stays open while kubectl runs
                           (an hour at most). kubectl tx waits for the
                           outcome up to this long (default 60s) plus 30s
                           after kubectl ends.
      --dry-run MODE       none (default); server: kubectl apply
                           --dry-run=server on the annotated copy, so kubetx
                           reports lock conflicts, with no Transaction and no
                           wait (exit code is kubectl's); client: plain
                           kubectl apply --dry-run=client on your files
      --prune              passed to kubectl; needs -l (kubectl tx does not
                           support --all). kubectl prunes after it applied
                           everything, so the deletes come last; kubetx
                           adds them to this transaction (your open
                           transaction takes your writes that name none).
      --prune-allowlist G/V/KIND
                           passed to kubectl (repeatable): prune only these
                           kinds, e.g. core/v1/ConfigMap; without it kubectl
                           also tries cluster-scoped kinds, which users
                           without cluster-wide list rights cannot, and the
                           apply then fails and rolls back
  -l, --selector SELECTOR  passed to kubectl: apply (and with --prune, prune)
                           only objects with these labels
      --server-side        passed to kubectl: server-side apply (no
                           last-applied annotation, so objects up to the
                           apiserver's limit, not 256 KiB); rolled back
                           like any other write
      --force-conflicts    passed to kubectl (needs --server-side): take
                           over fields another manager owns
      --field-manager NAME passed to kubectl: the manager name its writes
                           use
      --no-prepare         do not ask kubetx to prepare (step 2): every
                           write locks as kubectl makes it, as with an
                           annotated plain kubectl apply. A prepared
                           transaction that rolls back while kubectl may
                           still be writing (Ctrl-C, a lost connection,
                           a timeout) keeps its locks the late-write
                           window plus 8 s (18 s by default) before
                           kubetx reports it; when kubectl exited on its
                           own (an object the apiserver rejected), or
                           the transaction was not prepared, it reports
                           once every write is accounted for
      --kubeconfig FILE    the kubeconfig for kubectl and for kubectl tx
      --context NAME       the kubeconfig context to use
Other kubectl flags are not accepted.

Ctrl-C while kubectl runs stops kubectl; kubectl tx then tells kubetx that
kubectl failed and waits for the rollback. Ctrl-C while kubectl tx waits
ends it; kubetx finishes the transaction on its own. If kubectl tx itself
dies while kubectl runs (SIGKILL, a closed laptop, a cancelled CI job), its
renewals stop and kubetx rolls the transaction back (reason ClientLost)
about 15 s after the last one; its objects are locked until then.

Environment:
  KUBECTL      the kubectl to run (default: kubectl on PATH)
  KUBECONFIG   as for kubectl

Output: kubectl's own output (its stdout and stderr), then on stdout:
  transaction t-4f2a9c1e committed: 2 members
    CREATE configmaps shop/settings: Committed
    UPDATE apps/deployments shop/web: Committed
or, when kubetx rolled back (or failed to: "failed", and an admin must act):
  transaction t-4f2a9c1e rolled back: <reason>: <the failure, or message>
    CREATE configmaps shop/settings: Restored (<what kubetx did>)
Progress while waiting goes to stderr, and so does a warning naming any
namespace whose objects were not part of the transaction (no policy covers
it, or it is one kubetx never covers, such as kube-system).

Exit codes: 0 committed (or kubetx took part in no write), 1 rolled back
or failed (or kubectl tx could not start the transaction), 2 usage error,
3 kubetx did not resolve the transaction in time. With --dry-run,
kubectl's exit code.
`;
