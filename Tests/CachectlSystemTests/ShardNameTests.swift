import CachectlSystem
import Testing

@Suite struct ShardNameTests {
    @Test func parsesAndNamesTheSet() throws {
        let shard = try #require(ShardName(fileName: "llama-3-70b-q4_k_m-00002-of-00003.gguf"))
        #expect(shard.stem == "llama-3-70b-q4_k_m")
        #expect(shard.index == 2)
        #expect(shard.count == 3)
        #expect(
            shard.allFileNames == [
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

    @Test(arguments: [
        ("mixtral-00001-of-00004.gguf", "mixtral", 1, 4),
        ("Meta-Llama-3-70B-Q4_K_M-00002-of-00002.gguf", "Meta-Llama-3-70B-Q4_K_M", 2, 2),
    ])
    func parsesShardNames(file: String, base: String, index: Int, count: Int) {
        let shard = ShardName(fileName: file)
        #expect(shard?.stem == base && shard?.index == index && shard?.count == count)
    }

    @Test(arguments: [
        "model.gguf", "model-1-of-4.gguf", "model-00005-of-00004.gguf", "-00001-of-00002.gguf", "m-00001-of-00002.bin",
    ])
    func rejectsNonShards(file: String) {
        #expect(ShardName(fileName: file) == nil)
    }
}
