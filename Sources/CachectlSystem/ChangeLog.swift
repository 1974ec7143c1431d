/// The changes one command makes, in order: each step is recorded and, unless
/// checking, performed, with how to undo it. One log serves three needs:
/// - check mode: ``perform(_:revert:_:)`` records the step and runs nothing, so
///   `--check` reports exactly the steps a real run takes;
/// - reporting: ``steps`` (and ``reported``, which says "would ..." in a check);
/// - rollback: ``rollBack()`` undoes what was done, newest first.
///
/// A log belongs to one command on one thread; it is not shared.
public final class ChangeLog {
    public let check: Bool
    /// Steps taken, or in a check the steps that would be taken, in order.
    public private(set) var steps: [String] = []
    private var undo: [() -> Void] = []

    public init(check: Bool) { self.check = check }

    /// Whether anything was (or, in a check, would be) changed.
    public var changed: Bool { !steps.isEmpty }

    /// The steps as a report says them: `would create ...` in a check.
    public var reported: [String] { check ? steps.map { "would " + $0 } : steps }

    /// Steps done that no revert undoes (a removal, a write without its old value):
    /// after a rollback these are still changed.
    public private(set) var irreversible: [String] = []
    /// Reverts that found the object no longer theirs (see ``perform(_:revertIfOwned:_:)``).
    public private(set) var notUndone: [String] = []

    /// Records `step` and runs `action` unless checking. `revert` is run by ``rollBack()``;
    /// a step without one counts as ``irreversible``.
    public func perform<E: Error>(_ step: String, revert: (() -> Void)? = nil, _ action: () throws(E) -> Void) throws(E)
    {
        if !check {
            try action()
            if let revert { undo.append(revert) } else { irreversible.append(step) }
        }
        steps.append(step)
    }

    /// Like ``perform(_:revert:_:)``, with a revert that first checks the object is
    /// still the one this run made, and returns false (recorded as not undone)
    /// instead of touching anything else.
    public func perform<E: Error>(
        _ step: String, revertIfOwned revert: @escaping () -> Bool, _ action: () throws(E) -> Void
    ) throws(E) {
        try perform(step, revert: { [unowned self] in if !revert() { self.notUndone.append(step) } }, action)
    }

    /// Undoes what was done, newest first (best effort: the original error is what matters).
    public func rollBack() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    /// After ``rollBack()``: whether anything this run did is still in effect.
    public var changedAfterRollback: Bool { !irreversible.isEmpty || !notUndone.isEmpty }

    /// Rolls back after `error` and says what is left: the failure to throw.
    public func rolledBack(after error: any Error) -> ChangeFailure {
        rollBack()
        return ChangeFailure(underlying: error, changed: changedAfterRollback, steps: steps, notUndone: notUndone)
    }
}

/// A change that failed part way, after its rollback: the error, the steps taken
/// before it, and whether anything is still in effect (a removal cannot be undone;
/// an object that is no longer this run's is left alone).
public struct ChangeFailure: Error, CustomStringConvertible {
    public var underlying: any Error
    /// Something this run did is still changed after the rollback.
    public var changed: Bool
    /// Every step taken before the failure.
    public var steps: [String]
    /// Steps whose revert found the object no longer its own, so left them.
    public var notUndone: [String]
    /// What the rollback did, in words, where the log's steps do not say it.
    public var rollback: String?

    public init(
        underlying: any Error, changed: Bool, steps: [String] = [], notUndone: [String] = [], rollback: String? = nil
    ) {
        self.underlying = underlying
        self.changed = changed
        self.steps = steps
        self.notUndone = notUndone
        self.rollback = rollback
    }

    public var description: String {
        var text = "\(underlying); rolled back"
        if !notUndone.isEmpty { text += "; not undone (no longer cachectl's): " + notUndone.joined(separator: ", ") }
        if changed { text += "; still changed: the steps above that cannot be undone" }
        return text
    }
}
