import Foundation
@testable import Training
import XCTest

/// What a stopped run says: where it stopped, what was saved, and how to continue.
final class StopSignalsTests: XCTestCase {
    override func tearDown() { StopSignals.resumeHint = "the same command plus --resume auto" }

    func testTheMessageSaysWhatWasSavedAndHowToContinue() {
        let saved = TrainingStopped(signal: SIGTERM, epoch: 2, step: 17, checkpoint: "runs/x/step-00000017")
        XCTAssertEqual(saved.exitCode, 143)
        XCTAssertTrue(saved.description.contains("checkpoint runs/x/step-00000017 written; resume with the same command "
            + "plus --resume auto"), saved.description)
        let early = TrainingStopped(signal: SIGINT, epoch: 1, step: 0, checkpoint: nil, checkpointing: true)
        XCTAssertTrue(early.description.contains("before the first step, so there was nothing to save"), early.description)
        XCTAssertFalse(early.description.contains("no --checkpoint-dir"), "it had one")
        XCTAssertFalse(early.description.contains("after epoch"), early.description)
        let earlyAlone = TrainingStopped(signal: SIGTERM, epoch: 0, step: 0, checkpoint: nil, checkpointing: false)
        XCTAssertEqual(earlyAlone.description, "stopped by SIGTERM before the first step, so there was nothing to save; "
            + "run the command again")
        let resumed = TrainingStopped(signal: SIGINT, epoch: 3, step: 40, checkpoint: nil, checkpointing: true)
        XCTAssertTrue(resumed.description.contains("it stopped before its first step"), resumed.description)
        let unsaved = TrainingStopped(signal: SIGUSR1, epoch: 1, step: 3, checkpoint: nil, checkpointing: false)
        XCTAssertTrue(unsaved.description.contains("no --checkpoint-dir, so nothing was saved"), unsaved.description)
        StopSignals.resumeHint = "the same sweep command plus --resume"
        XCTAssertTrue(saved.description.hasSuffix("resume with the same sweep command plus --resume"), saved.description)
    }
}
