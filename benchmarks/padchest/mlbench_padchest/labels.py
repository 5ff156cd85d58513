"""The pinned label sets of the PadChest benchmarks.

SPECIFIC_LABELS is Table 8 of Liz et al. 2023 in Table 8's order, spelled as PadChest's term
tree and Labels column spell them. PA_COUNTS are the PA image counts of each label in the public
CSV (PADCHEST_chest_x_ray_images_labels_160K_01.02.19, labels stripped, 'exclude' ignored): the
35 most frequent PA labels are exactly Table 8's 35. Table 8's "# Samples" column is not a
frequency (test-split counts for most rows), so the demo corpus draws its imbalance from these.
"""

SPECIFIC_VERSION = "1.0"

# label -> PA images carrying it in the public CSV
PA_COUNTS: dict[str, int] = {
    "normal": 34369,
    "COPD signs": 13426,
    "cardiomegaly": 8420,
    "aortic elongation": 7036,
    "unchanged": 6537,
    "scoliosis": 5369,
    "chronic changes": 4503,
    "costophrenic angle blunting": 3480,
    "air trapping": 3373,
    "pleural effusion": 3260,
    "pneumonia": 3298,
    "interstitial pattern": 3031,
    "infiltrates": 2863,
    "laminar atelectasis": 2798,
    "vertebral degenerative changes": 2840,
    "kyphosis": 2593,
    "apical pleural thickening": 2334,
    "vascular hilar enlargement": 2414,
    "fibrotic band": 2286,
    "nodule": 2174,
    "calcified granuloma": 1990,
    "callus rib fracture": 1791,
    "pacemaker": 1628,
    "aortic atheromatosis": 1584,
    "volume loss": 1485,
    "sternotomy": 1490,
    "bronchiectasis": 1495,
    "hiatal hernia": 1481,
    "pseudonodule": 1363,
    "hemidiaphragm elevation": 1364,
    "alveolar pattern": 1277,
    "increased density": 1192,
    "vertebral anterior compression": 1055,
    "suture material": 1113,
    "supra aortic elongation": 1046,
}

# Table 8's order (the dict above is written in it).
SPECIFIC_LABELS: tuple[str, ...] = tuple(PA_COUNTS)
assert len(SPECIFIC_LABELS) == 35
