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
    public func perform<E: Error>(_ step: String, revert: (() -> Void)? = nil, _ action: () throws(E) -> Void) throws(E) {
        if !check {
            try action()
            if let revert { undo.append(revert) } else { irreversible.append(step) }
        }
        steps.append(step)
    }

    /// Like ``perform(_:revert:_:)``, with a revert that first checks the object is
    /// still the one this run made, and returns false (recorded as not undone)
    /// instead of touching anything else.
    public func perform<E: Error>(_ step: String, revertIfOwned revert: @escaping () -> Bool, _ action: () throws(E) -> Void) throws(E) {
        try perform(step, revert: { [unowned self] in if !revert() { self.notUndone.append(step) } }, action)
    }

    /// Undoes what was done, newest first (best effort: the original error is what matters).
    public func rollBack() {
        for action in undo.reversed() { action() }
        undo.removeAll()
    }

    /// After ``rollBack()``: whether anything this run did is still in effect.
    public var changedAfterRollback: Bool { !irreversible.isEmpty || !notUndone.isEmpty }
}
