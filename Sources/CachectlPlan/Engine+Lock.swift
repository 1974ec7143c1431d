import CachectlSystem
import Glibc

extension Engine {
    /// What every `apply` locks from its plan to its last action: the directory
    /// of the tier state (`/var/lib/cachectl`). flock(2) on the directory itself,
    /// so a plan that fails leaves no lock file behind. Separate from the state
    /// file's own lock (`tiers.json.lock`), which each tier transaction inside the
    /// apply takes and releases.
    public var applyLockPath: String {
        Path.directory(of: environment.tierState.path)
    }

    /// Runs `body` holding an exclusive flock(2) on ``applyLockPath``. When the lock
    /// cannot be taken, nothing runs: every action is reported skipped and the
    /// first one failed with the reason.
    func withApplyLock(_ body: () -> PlanReport) -> PlanReport {
        let lock: OpenFile
        do {
            try Path.makeDirectory(applyLockPath, mode: 0o755)
            lock = try OpenFile(applyLockPath, flags: O_RDONLY | O_DIRECTORY)
            _ = try sys("flock", lock.path) { flock(lock.fd, LOCK_EX) }
        } catch {
            var actions = work.map { item in Action(kind: item.kind, target: item.target, status: .skipped) }
            if !actions.isEmpty {
                actions[0].status = .failed
                actions[0].error = "take the apply lock: \(error)"
            }
            return PlanReport(changed: false, failed: true, check: false, file: file, actions: actions)
        }
        defer { _ = flock(lock.fd, LOCK_UN) }
        return body()
    }
}
