#pragma once
// A small DICOM for the cache tests that check header text (patient ids, institutions).

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace medload::loader::test {

// A 64 x 64 8-bit MONOCHROME2 DICOM (pixels differ by `seed`) with header text as raw bytes:
// `charset` is SpecificCharacterSet ("" leaves it out).
inline void write_text_dicom(const std::string& path, int seed, const std::string& charset,
                             const std::string& patient_id, const std::string& institution) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, ("1.2.826.0.1.3680043.2.1125.7." + std::to_string(seed)).c_str());
  if (!charset.empty()) ds.putAndInsertString(DCM_SpecificCharacterSet, charset.c_str());
  ds.putAndInsertString(DCM_PatientID, patient_id.c_str());
  ds.putAndInsertString(DCM_InstitutionName, institution.c_str());
  ds.putAndInsertString(DCM_Modality, "OT");
  ds.putAndInsertUint16(DCM_Rows, 64);
  ds.putAndInsertUint16(DCM_Columns, 64);
  ds.putAndInsertUint16(DCM_SamplesPerPixel, 1);
  ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds.putAndInsertUint16(DCM_BitsAllocated, 8);
  ds.putAndInsertUint16(DCM_BitsStored, 8);
  ds.putAndInsertUint16(DCM_HighBit, 7);
  ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  std::vector<Uint8> pixels(64 * 64);
  for (std::size_t i = 0; i < pixels.size(); ++i) {
    pixels[i] =
        static_cast<Uint8>((i % 64) * 2 + (i / 64) + (i * 7919u * static_cast<unsigned>(seed + 1)) % 23);
  }
  ds.putAndInsertUint8Array(DCM_PixelData, pixels.data(), pixels.size());
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good()) << path;
}

}  // namespace medload::loader::test
