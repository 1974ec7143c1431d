import CachectlWarm
import Testing

@Suite struct ShardNameTests {
    @Test func parsesAndNamesTheSet() throws {
        let shard = try #require(ShardName(fileName: "llama-3-70b-q4_k_m-00002-of-00003.gguf"))
        #expect(shard.stem == "llama-3-70b-q4_k_m")
        #expect(shard.index == 2)
        #expect(shard.count == 3)
        #expect(shard.allFileNames == [
            "llama-3-70b-q4_k_m-00001-of-00003.gguf",
            "llama-3-70b-q4_k_m-00002-of-00003.gguf",
            "llama-3-70b-q4_k_m-00003-of-00003.gguf",
        ])
    }

    @Test(arguments: [
        "model.gguf", "model-1-of-4.gguf", "model-00001-of-00004.bin", "-00001-of-00004.gguf",
        "model-00005-of-00004.gguf", "model-00000-of-00004.gguf", "model-0000a-of-00004.gguf",
    ])
    func rejectsOtherNames(name: String) {
        #expect(ShardName(fileName: name) == nil)
    }
}
