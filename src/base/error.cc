#include "base/error.h"

namespace tidemark {

std::string Error::describe() const {
  std::string out = what();
  if (!hint_.empty()) {
    out += "\nHint: ";
    out += hint_;
  }
  return out;
}

int exitCodeFor(ErrorClass cls) {
  switch (cls) {
    case ErrorClass::Config:
      return kExitUsage;
    case ErrorClass::PositionLost:
      return kExitPositionLost;
    case ErrorClass::Retriable:
    case ErrorClass::Fatal:
    case ErrorClass::Poison:
      return kExitRuntime;
  }
  return kExitRuntime;
}

}  // namespace tidemark
