import CMPI

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

    /// Returns when every rank of `host` has arrived, with the window's loads and stores ordered around it.
    static func barrier(_ window: MPI_Win, host: MPI_Comm) throws {
        try checkMPI(MPI_Win_sync(window), "MPI_Win_sync")
        try checkMPI(MPI_Barrier(host), "MPI_Barrier")
        try checkMPI(MPI_Win_sync(window), "MPI_Win_sync")
    }
}
