/// How `promote` picks a tier when none is named.
public enum PlacementStrategy: String, Codable, Sendable, CaseIterable {
    /// The fastest tier (lowest rank) with room.
    case fastestFit = "fastest-fit"
    /// The tier with room that is already fullest (least free space left), so
    /// tiers fill one at a time and large free tiers stay whole for large models.
    case fillFirst = "fill-first"
    /// The next tier after the one used last, in rank order, skipping tiers without room.
    case roundRobin = "round-robin"

    /// A live tier that could take the model.
    public struct Candidate: Sendable, Equatable {
        public var name: String
        public var rank: Int
        public var free: UInt64

        public init(name: String, rank: Int, free: UInt64) {
            self.name = name
            self.rank = rank
            self.free = free
        }
    }

    /// Picks a tier for `need` bytes.
    ///
    /// - Parameters:
    ///   - candidates: live tiers in speed order (rank, then name).
    ///   - cursor: round-robin position saved from the last placement.
    /// - Returns: the index of the chosen candidate (nil when none has room) and the next cursor.
    public func choose(need: UInt64, from candidates: [Candidate], cursor: Int) -> (index: Int?, nextCursor: Int) {
        let fits = candidates.indices.filter { candidates[$0].free >= need }
        switch self {
        case .fastestFit:
            return (fits.first, cursor)
        case .fillFirst:
            let best = fits.min {
                (candidates[$0].free, candidates[$0].rank, $0) < (candidates[$1].free, candidates[$1].rank, $1)
            }
            return (best, cursor)
        case .roundRobin:
            guard !candidates.isEmpty else { return (nil, cursor) }
            let start = ((cursor % candidates.count) + candidates.count) % candidates.count
            for step in 0..<candidates.count {
                let index = (start + step) % candidates.count
                if candidates[index].free >= need { return (index, index + 1) }
            }
            return (nil, cursor)
        }
    }
}
