import CMPI
#if canImport(Glibc)
import Glibc
#endif

/// MPI-3 shared windows, the ranks of one host reading each other's memory (the gradient sum's arenas, the sharded
/// collectives' mailbox).
enum SharedWindow {
    /// A window of `bytesPerRank` on every rank of `host`, each segment on its own pages (touched by its owner), with
    /// errors returned; nil on every rank of the world when any rank's allocation failed.
    static func allocate(bytesPerRank: Int, host: MPI_Comm, world: MPI_Comm) throws -> MPI_Win? {
        var info = cmpi_info_null()
        MPI_Info_create(&info)
        defer { MPI_Info_free(&info) }
        MPI_Info_set(info, "alloc_shared_noncontig", "true")
        var window: MPI_Win?
        var base: UnsafeMutableRawPointer?
        let status = MPI_Win_allocate_shared(MPI_Aint(bytesPerRank), 4, info, host, &base, &window)
        var succeeded: Int32 = status == MPI_SUCCESS ? 1 : 0
        try checkMPI(MPI_Allreduce(cmpi_in_place(), &succeeded, 1, cmpi_int32(), cmpi_op_min(), world), "MPI_Allreduce")
        guard succeeded == 1 else {
            if status == MPI_SUCCESS { MPI_Win_free(&window) }
            return nil
        }
        MPI_Win_set_errhandler(window!, cmpi_errors_return())
        return window!
    }

    /// Every host rank's segment of `window`, in host-rank order.
    static func segments(of window: MPI_Win, ranks: Int) throws -> [UnsafeMutableRawPointer] {
        try (0..<ranks).map { rank in
            var bytes: MPI_Aint = 0
            var unit: Int32 = 0
            var base: UnsafeMutableRawPointer?
            try checkMPI(MPI_Win_shared_query(window, Int32(rank), &bytes, &unit, &base), "MPI_Win_shared_query")
            return base!
        }
    }

    /// Free bytes where Open MPI puts shared windows (`osc_sm_backing_directory`, /dev/shm by default),
    /// or nil when that cannot be told.
    static func backingRoom() -> (directory: String, free: Int)? {
        let directory = getenv("OMPI_MCA_osc_sm_backing_directory").map { String(cString: $0) } ?? "/dev/shm"
        var status = statvfs()
        guard statvfs(directory, &status) == 0 else { return nil }
        return (directory, Int(status.f_bavail) * Int(status.f_frsize))
    }

    /// Whether every rank's host has `hostBytes` (and a MiB) free where windows are backed. Open MPI backs a window
    /// with a file there; with too little room it prints a warning and then hangs in the collective allocation
    /// instead of failing — so every window is checked for first. Collective over the world.
    static func everyHostHasRoom(for hostBytes: Int, world: MPI_Comm) throws -> Bool {
        var roomy: Int32 = backingRoom().map { $0.free >= hostBytes + (1 << 20) } ?? true ? 1 : 0
        try checkMPI(MPI_Allreduce(cmpi_in_place(), &roomy, 1, cmpi_int32(), cmpi_op_min(), world), "MPI_Allreduce")
        return roomy == 1
    }

    /// Returns when every rank of `host` has arrived, with the window's loads and stores ordered around it.
    static func barrier(_ window: MPI_Win, host: MPI_Comm) throws {
        try checkMPI(MPI_Win_sync(window), "MPI_Win_sync")
        try checkMPI(MPI_Barrier(host), "MPI_Barrier")
        try checkMPI(MPI_Win_sync(window), "MPI_Win_sync")
    }
}
