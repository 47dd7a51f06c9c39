// What the addon checks in a model file before LibTorch parses it. LibTorch's own reader trusts the file: it checks
// no CRC, and loads an export whose tensors reach past their storages.
#pragma once

#include <string>

// Says what the file is when it is not a TorchScript export (a checkpoint in either format, or not a zip archive),
// rather than LibTorch's archive-level message; checks every record's CRC-32, the pickles with the bounded
// interpreter, and that every tensor record holds the bytes its storage declares and every tensor lies inside its
// storage. Throws FlowError(ErrorCode::ModelLoad) naming the file and the fault.
void CheckExportFile(const std::string& path);
