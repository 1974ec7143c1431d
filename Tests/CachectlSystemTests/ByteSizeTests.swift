import CachectlSystem
import Testing

@Suite struct ByteSizeTests {
    @Test(
        arguments: [
            ("4096", 4096), ("64k", 65536), ("64K", 65536), ("2M", 2 << 20), ("2MiB", 2 << 20),
            ("1.5G", 1536 << 20), ("1T", 1 << 40), ("4GB", 4_000_000_000), ("512 MiB", 512 << 20), ("0", 0),
        ] as [(String, UInt64)])
    func parses(text: String, bytes: UInt64) {
        #expect(ByteSize(parsing: text)?.bytes == bytes)
    }

    @Test(arguments: ["", "G", "-1G", "1.2.3M", "12X", "1.5", "4 G B", "99999999999T"])
    func rejects(text: String) {
        #expect(ByteSize(parsing: text) == nil)
    }

    @Test func formats() {
        #expect(ByteSize.format(17) == "17 B")
        #expect(ByteSize.format(2 << 20) == "2.00 MiB")
        #expect(ByteSize.format(1536 << 20) == "1.50 GiB")
        #expect(ByteSize.format(300 << 30) == "300 GiB")
    }
}
