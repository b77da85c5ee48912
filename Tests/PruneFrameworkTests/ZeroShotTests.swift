import Foundation
import Testing
import TestSupport
@testable import PruneFramework

/// Zero-shot tasks: the harness's prompts for one hand-checked item of each task, the metrics, and the scorer.
@Suite struct ZeroShotTests {
    // MARK: prompts (items copied from Data/zeroshot, expected strings checked by hand
    // against the lm-evaluation-harness task YAMLs)

    @Test func boolqPrompt() throws {
        let line = #"{"query": "Passage: Ethanol fuel -- Energy balance is modest.\nQuestion: does ethanol take more energy make that produces?", "choices": ["no", "yes"], "gold": 0}"#
        let it = try ZeroShotTask.boolq.item(json: Data(line.utf8))
        let ctx = "Ethanol fuel -- Energy balance is modest.\nQuestion: does ethanol take more energy make that produces?\nAnswer:"
        #expect(it == ZeroShotItem(contexts: [ctx, ctx], continuations: [" no", " yes"], choices: ["no", "yes"], gold: 0))
    }

    @Test func piqaPrompt() throws {
        let line = #"{"goal": "Make outdoor pillow.", "sol1": "Blow into tin can and tie with rubber band.", "sol2": "Blow into trash bag and tie with rubber band."}"#
        let it = try ZeroShotTask.piqa.item(json: Data(line.utf8), label: "1")
        let ctx = "Question: Make outdoor pillow.\nAnswer:"
        #expect(it.contexts == [ctx, ctx])
        #expect(it.continuations == [" Blow into tin can and tie with rubber band.", " Blow into trash bag and tie with rubber band."])
        #expect(it.gold == 1)
    }

    @Test func hellaswagPromptAndPreprocess() throws {
        let lines = ["Roof shingle removal: A man is sitting on a roof. he", "3",
                     "is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                     "is holding a rubik's cube.", "starts pulling up roofing on a roof."]
        let items = try ZeroShotTask.hellaswagItems(lines, path: "h.txt", limit: nil)
        #expect(items.count == 1)
        #expect(items[0].contexts[0] == "Roof shingle removal: A man is sitting on a roof. he")
        #expect(items[0].continuations[3] == " starts pulling up roofing on a roof.")
        #expect(items[0].choices[0] == "is using wrap to wrap a pair of skis.")
        #expect(items[0].gold == 3)
        #expect(ZeroShotTask.hellaswagPreprocess(" Visit a site like [www.kiddio.org] to find games [title] Play. ")
                == "Visit a site like to find games. Play.")
        let e = try #require(throws: PruneError.self) { try ZeroShotTask.hellaswagItems(lines + ["x"], path: "h.txt", limit: nil) }
        #expect(e.code == .badFormat && e.message.contains("h.txt: 7 lines are not blocks of 6"), "\(e.message)")
    }

    @Test func winograndePartialScoring() throws {
        let line = #"{"context_options": ["Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"], "continuation": "always got the easier cases.", "gold": 1}"#
        let it = try ZeroShotTask.winogrande.item(json: Data(line.utf8))
        #expect(it.contexts == ["Sarah was a much better surgeon than Maria so Sarah", "Sarah was a much better surgeon than Maria so Maria"])
        #expect(it.continuations == [" always got the easier cases.", " always got the easier cases."])
        #expect(it.gold == 1)
    }

    @Test func arcPrompts() throws {
        let easy = #"{"id": "Mercury_7081673", "question": "Which piece of safety equipment is used to keep mold spores from entering the respiratory system?", "choices": {"text": ["safety goggles", "breathing mask", "rubber gloves", "lead apron"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"}"#
        for task in [ZeroShotTask.arcEasy, .arcChallenge] {
            let it = try task.item(json: Data(easy.utf8))
            #expect(it.contexts[0] == "Question: Which piece of safety equipment is used to keep mold spores from entering the respiratory system?\nAnswer:")
            #expect(it.continuations == [" safety goggles", " breathing mask", " rubber gloves", " lead apron"])
            #expect(it.gold == 1)
        }
        let numeric = #"{"id": "x", "question": "Q?", "choices": {"text": ["a", "b", "c"], "label": ["1", "2", "3"]}, "answerKey": "3"}"#
        #expect(try ZeroShotTask.arcChallenge.item(json: Data(numeric.utf8)).gold == 2)
        let bad = #"{"id": "x", "question": "Q?", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "E"}"#
        let e = try #require(throws: PruneError.self) { try ZeroShotTask.arcEasy.item(json: Data(bad.utf8)) }
        #expect(e.code == .badFormat && e.message.contains("answerKey 'E'"), "\(e.message)")
    }

    @Test func openbookqaPrompt() throws {
        let line = #"{"id": "1129", "question_stem": "There is most likely going to be fog around:", "choices": {"text": ["a marsh", "a tundra", "the plains", "a desert"], "label": ["A", "B", "C", "D"]}, "answerKey": "A"}"#
        let it = try ZeroShotTask.openbookqa.item(json: Data(line.utf8))
        #expect(it.contexts[0] == "There is most likely going to be fog around:")
        #expect(it.continuations[0] == " a marsh")
        #expect(it.gold == 0)
    }

    @Test func realDataFilesLoad() throws {
        let dir = Repository.data
        let want: [ZeroShotTask: Int] = [.boolq: 3270, .piqa: 1838, .hellaswag: 10042, .winogrande: 1267,
                                        .arcEasy: 2376, .arcChallenge: 1172, .openbookqa: 500]
        for t in ZeroShotTask.allCases {
            let items = try t.load(dataDir: dir)
            #expect(items.count == want[t], "\(t.rawValue)")
            #expect(items.allSatisfy { $0.contexts.count == $0.continuations.count && $0.choices.indices.contains($0.gold) })
            #expect(try t.load(dataDir: dir, limit: 3).count == 3)
        }
    }

    @Test func taskListErrorsNameTheTaskAndTheAllowedOnes() throws {
        #expect(try ZeroShotTask.parseList("boolq, arc_easy") == [.boolq, .arcEasy])
        do {
            _ = try ZeroShotTask.parseList("boolq,hellaswog")
            Issue.record("no error")
        } catch let e as PruneError {
            #expect(e.message.contains("'hellaswog'") && e.message.contains("arc_challenge"), "got: \(e.message)")
        }
    }

    // MARK: request encoding

    /// One id per character (its scalar value), so token boundaries are visible.
    static func charIds(_ s: String) -> [Int32] { s.unicodeScalars.map { Int32($0.value) } }

    @Test func trailingSpaceOfTheContextMovesToTheContinuation() {
        let r = ZeroShotRequest(context: "Answer: ", continuation: "yes", encode: Self.charIds)
        #expect(r.context == Self.charIds("Answer:"))
        #expect(r.continuation == Self.charIds(" yes"))
        let plain = ZeroShotRequest(context: "Answer:", continuation: " no", encode: Self.charIds)
        #expect(plain.continuation == Self.charIds(" no"))
    }

    @Test func continuationIdsComeFromTheWholeEncoding() {
        // A tokenizer that merges "a" + "b" into one id: the continuation is what follows the context's ids.
        let merging: (String) -> [Int32] = { s in
            var out: [Int32] = [], chars = Array(s.unicodeScalars), i = 0
            while i < chars.count {
                if chars[i] == "a", i + 1 < chars.count, chars[i + 1] == "b" { out.append(1000); i += 2 } else { out.append(Int32(chars[i].value)); i += 1 }
            }
            return out
        }
        let r = ZeroShotRequest(context: "xx", continuation: "abz", encode: merging)
        #expect(r.context == [120, 120])
        #expect(r.continuation == [1000, 122])
    }

    // MARK: metrics

    @Test func accAndAccNormOnHandMadeLogprobs() {
        // Choice 0 has the best total (−2 > −5); choice 1 the best per byte (−5/10 > −2/1).
        let item = ZeroShotItem(contexts: ["c", "c"], continuations: [" a", " bbbbbbbbbb"], choices: ["a", "bbbbbbbbbb"], gold: 1)
        let c = ZeroShotMetrics.correct(logprobs: [-2, -5], item: item)
        #expect(c.acc == false)      // −2 > −5: acc picks choice 0
        #expect(c.accNorm == true)   // −2/1 < −5/10 = −0.5: acc_norm picks choice 1
        #expect(ZeroShotMetrics.argmax([1, 3, 3]) == 1)
        let s = ZeroShotMetrics.meanAndStderr([true, true, false, true])
        #expect(s.mean == 0.75)
        #expect(abs(s.stderr - (0.75 * 0.25 / 3).squareRoot()) < 1e-15)
        // Multi-byte choices count bytes: "é" is 2 bytes.
        let u = ZeroShotItem(contexts: ["c", "c"], continuations: [" é", " e"], choices: ["é", "e"], gold: 0)
        #expect(ZeroShotMetrics.correct(logprobs: [-1.5, -1], item: u).accNorm == true)
    }

    // MARK: scorer

    /// Σ log p(continuation) from the full logits of the joined sequence: the reference the scorer must match.
    func directLogprob(_ m: Transformer, _ r: ZeroShotRequest) throws -> Double {
        let full = r.context + r.continuation, V = m.config.vocabSize
        let lg = try m.logits(tokens: full, batch: 1, seqLen: full.count)
        var s = 0.0
        for j in r.context.count..<full.count {
            let row = Array(lg[((j - 1) * V)..<(j * V)]).map(Double.init)
            let mx = row.max()!
            s += row[Int(full[j])] - (mx + log(row.map { exp($0 - mx) }.reduce(0, +)))
        }
        return s
    }

    @Test(arguments: ZeroShotScorer.Mode.allCases)
    func scorerMatchesDirectLogits(mode: ZeroShotScorer.Mode) throws {
        let m = try Transformer(randomWith: tinyConfig(layers: 3), seed: 21)
        let scorer = ZeroShotScorer(model: m, mode: mode)
        let shared: [ZeroShotRequest] = [   // one context, continuations of different lengths
            .init(context: [1, 2, 3, 4, 5], continuation: [6]),
            .init(context: [1, 2, 3, 4, 5], continuation: [7, 8, 9]),
            .init(context: [1, 2, 3, 4, 5], continuation: [6, 10]),
        ]
        let split: [ZeroShotRequest] = [    // WinoGrande-like: contexts differ, continuation shared
            .init(context: [3, 4, 11], continuation: [20, 21]),
            .init(context: [3, 4, 12, 13], continuation: [20, 21]),
            .init(context: [30], continuation: [20, 21]),
        ]
        for reqs in [shared, split] {
            let got = try scorer.logLikelihoods(reqs)
            for (g, r) in zip(got, reqs) {
                let want = try directLogprob(m, r)
                #expect(abs(g - want) < 1e-4, "\(mode): got \(g), want \(want)")
            }
        }
        let e = try #require(throws: PruneError.self) { try scorer.logLikelihoods([.init(context: [], continuation: [1])]) }
        #expect(e.message.contains("request 0 has an empty context"), "\(e.message)")
    }

    /// A model whose every prediction is token 5: zero block outputs, an output norm that keeps only
    /// dimension 0, and an embedding (tied head) whose column 0 is 1 everywhere but 10 for token 5.
    func forcedModel() throws -> Transformer {
        let c = tinyConfig(layers: 2)
        let m = try Transformer(randomWith: c, seed: 3)
        for l in 0..<c.nLayers {
            m.params.view(TensorNames.attnOutput(l)).update(repeating: 0)
            m.params.view(TensorNames.ffnDown(l)).update(repeating: 0)
        }
        let D = c.hiddenSize, emb = m.params.view(TensorNames.tokenEmbedding)
        for t in 0..<c.vocabSize { emb[t * D] = t == 5 ? 10 : 1 }
        let g = m.params.view(TensorNames.outputNorm)
        g.update(repeating: 0)
        g[0] = 1
        m.params.markModified()
        return m
    }

    @Test func scorerPicksTheForcedContinuation() throws {
        let m = try forcedModel()
        let item = ZeroShotItem(contexts: ["x", "x", "x"], continuations: [" a", " b", " c"], choices: ["a", "b", "c"], gold: 2)
        // "c" encodes to token 5 repeated, the others to other ids.
        let encode: (String) -> [Int32] = { s in s.map { $0 == "c" ? 5 : $0 == "x" ? 1 : $0 == " " ? 2 : 7 } }
        for mode in ZeroShotScorer.Mode.allCases {
            let scorer = ZeroShotScorer(model: m, mode: mode)
            let lp = try scorer.logLikelihoods(zip(item.contexts, item.continuations).map {
                ZeroShotRequest(context: $0, continuation: $1, encode: encode)
            })
            #expect(lp[2] > lp[0] + 10 && lp[2] > lp[1] + 10, "\(mode): \(lp)")
            let r = try ZeroShotEvaluator.evaluate(task: .piqa, items: [item, item], scorer: scorer, encode: encode)
            #expect(r.acc == 1 && r.accNorm == 1 && r.n == 2 && r.accStderr == 0)
        }
    }

    @Test(.requires(.smolLM2))
    func realModelPrefersTheObviousAnswer() throws {
        let file = try GGUFFile(path: TestPaths.model)
        let tok = try BPETokenizer(gguf: file)
        let m = try #require(SharedModel.model)
        let item = ZeroShotTask.shared(context: "Question: What color is the clear daytime sky?\nAnswer:",
                                       choices: ["blue", "a microwave oven"], gold: 0)
        let r = try ZeroShotEvaluator.evaluate(task: .arcEasy, items: [item], scorer: ZeroShotScorer(model: m),
                                               encode: { tok.encode($0) })
        #expect(r.acc == 1)
    }
}
