import ArgumentParser
import CachectlMount
import CachectlSystem
import FoundationEssentials
import Glibc

struct Mounts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mounts",
        abstract: "List NFS and CIFS mounts and whether FS-Cache backs them.",
        discussion: """
            Reads the live mounts with libmount (mountinfo), joins NFS mounts with \
            /proc/fs/nfsfs/volumes on the device number (its FSC column is the kernel's proof \
            that fsc took effect), and shows each mount's fstab entry and readahead. Secrets \
            in options (password=, pass=, password2=, the PASSWORD of username=USER%PASSWORD) \
            are shown as ***.

            Examples:
              cachectl mounts
              cachectl mounts --json | jq '.mounts[] | select(.fsc_enabled | not) | .mountpoint'
            """
    )

    @OptionGroup var output: OutputOptions

    struct Report: Encodable { var mounts: [NetworkMount] }

    func run() throws {
        output.bootstrap()
        let mounts = try NetworkMounts.list()
        let without = mounts.filter { !$0.fscEnabled }.count
        let msg =
            mounts.isEmpty ? "no NFS or CIFS mounts" : "\(mounts.count) network mount(s), \(without) without FS-Cache"
        try CommandOutput.finish(output, changed: false, failed: false, msg: msg, data: Report(mounts: mounts)) {
            guard !mounts.isEmpty else { return msg }
            var rows = [["MOUNTPOINT", "TYPE", "SERVER", "EXPORT", "FSC", "SB-FSC", "READAHEAD", "FSTAB"]]
            for m in mounts {
                rows.append([
                    m.mountpoint, m.fstype, m.server, m.export,
                    m.nfsFSC.map { $0 ? "yes" : "no" } ?? "-",
                    m.fscInSuperblock ? "fsc" : "-",
                    m.readaheadKB.map { "\($0)K" } ?? "-",
                    m.fstabOptions == nil ? "none" : m.fstabHasFsc == true ? "yes (fsc)" : "yes (no fsc)",
                ])
            }
            let details = mounts.map { "\($0.mountpoint): \($0.options)" }
            return ([formatTable(rows), ""] + details + [msg]).joined(separator: "\n")
        }
    }
}
