"""PadChest's benchmark labels as findings of the shared vocabulary (external validation, ``mlbench evaluate``).

The vocabulary is torchxrayvision's common pathology names. Which PadChest term is which common
name follows torchxrayvision's own relabelling of PadChest (e.g. its Infiltration gathers the
infiltrates subtree, its Effusion the effusion terms) checked against PadChest's term tree. Where
torchxrayvision matches by substring and so would be wrong, we are conservative: "pseudonodule"
contains "nodule" but is not one (a nipple or bone shadow mimicking it), so it maps to nothing.

Each label maps as
- ``exact`` when its images are the finding's: a padchest-general label is a tree node that holds
  its descendants, so "pleural effusion" there (a parent of "loculated pleural effusion" and the
  other kinds) is exactly Effusion;
- ``narrower`` (child -> parent) when it is one kind of the finding: a padchest-specific label is
  the raw term only, so its "pleural effusion" leaves the loculated kinds out, and "hiatal hernia"
  is one hernia. Such a label's model is scored on the other benchmark's whole finding; it never
  serves as another run's truth (its negatives may hold the other kinds);
- to nothing when the label is broader than the finding (a parent of it, e.g. "thoracic cage
  deformation" over Scoliosis) or a different thing: left out, with the reason.
"""

from __future__ import annotations

from mlbench import EXACT, NARROWER, Finding, SharedFindings

VOCABULARY = "torchxrayvision"

_RAW = "padchest-specific's label is the raw term; "

SPECIFIC = SharedFindings(
    vocabulary=VOCABULARY,
    labels={
        "cardiomegaly": Finding("Cardiomegaly", EXACT, "a leaf of the term tree: the label is the finding"),
        "pleural effusion": Finding("Effusion", NARROWER, _RAW + "its children (loculated pleural and fissural "
                                    "effusion, empyema, hemothorax, hydropneumothorax) are other terms"),
        "pneumonia": Finding("Pneumonia", NARROWER, _RAW + "atypical and viral pneumonia are other terms"),
        "nodule": Finding("Nodule", NARROWER, _RAW + "'multiple nodules' is another term"),
        "laminar atelectasis": Finding("Atelectasis", NARROWER, "plate-like atelectasis, one kind of atelectasis"),
        "hiatal hernia": Finding("Hernia", NARROWER, "the hernia a chest film shows most, one kind of hernia"),
        "apical pleural thickening": Finding("Pleural_Thickening", NARROWER, "one kind of pleural thickening"),
        "infiltrates": Finding("Infiltration", NARROWER, _RAW + "the interstitial and alveolar patterns, which "
                               "torchxrayvision also counts as Infiltration, are other labels"),
        "scoliosis": Finding("Scoliosis", EXACT, "a leaf of the term tree"),
        "aortic elongation": Finding("Aortic Elongation", NARROWER, _RAW + "supra aortic elongation is another label"),
        "air trapping": Finding("Air Trapping", EXACT, "a leaf of the term tree"),
        "costophrenic angle blunting": Finding("Costophrenic Angle Blunting", EXACT, "a leaf of the term tree"),
        "aortic atheromatosis": Finding("Aortic Atheromatosis", EXACT, "a leaf of the term tree"),
        "hemidiaphragm elevation": Finding("Hemidiaphragm Elevation", EXACT, "a leaf of the term tree"),
        "bronchiectasis": Finding("Bronchiectasis", EXACT, "a leaf of the term tree"),
        "calcified granuloma": Finding("Granuloma", NARROWER, "one kind of granuloma"),
        "callus rib fracture": Finding("Fracture", NARROWER, "a healing rib fracture, one kind of fracture"),
        "vascular hilar enlargement": Finding("Hilar Enlargement", NARROWER, "one kind of hilar enlargement"),
        "pacemaker": Finding("Support Devices", NARROWER, "one support device"),
    },
    left_out={
        "pseudonodule": "not a nodule (a shadow mimicking one), though torchxrayvision's substring match counts it",
        "interstitial pattern": "one pattern of infiltration: mapping it too would score a pattern detector on "
                                "every infiltrate",
        "alveolar pattern": "one pattern of infiltration (and the parent of consolidation): not the finding",
        "COPD signs": "signs of a disease, not emphysema itself",
        "fibrotic band": "a scar line, not pulmonary fibrosis",
        "supra aortic elongation": "a kind of aortic elongation already covered by that label",
    },
)

GENERAL = SharedFindings(
    vocabulary=VOCABULARY,
    labels={
        "cardiomegaly": Finding("Cardiomegaly", EXACT, "a leaf of the term tree"),
        "pleural effusion": Finding("Effusion", EXACT, "the node holds every kind of effusion (its children)"),
        "pneumonia": Finding("Pneumonia", EXACT, "the node holds atypical and viral pneumonia"),
        "nodule": Finding("Nodule", EXACT, "the node holds multiple nodules"),
        "mass": Finding("Mass", EXACT, "the node holds every mass (pulmonary, mediastinal, pleural, breast, soft "
                        "tissue), as a report-mined 'Mass' does"),
        "atelectasis": Finding("Atelectasis", EXACT, "the node holds every kind (laminar, lobar, segmental, ...)"),
        "pleural thickening": Finding("Pleural_Thickening", EXACT, "the node holds apical and calcified thickening"),
        "infiltrates": Finding("Infiltration", EXACT, "the node holds the interstitial and alveolar patterns and "
                               "consolidation, the terms torchxrayvision gathers as Infiltration"),
        "emphysema": Finding("Emphysema", EXACT, "a leaf of the term tree"),
        "pulmonary fibrosis": Finding("Fibrosis", EXACT, "the node holds asbestosis signs and post-radiotherapy "
                                      "changes"),
        "hiatal hernia": Finding("Hernia", NARROWER, "one kind of hernia"),
        "pneumothorax": Finding("Pneumothorax", EXACT, "the node holds hydropneumothorax"),
        "fracture": Finding("Fracture", EXACT, "the node holds every fracture"),
        "granuloma": Finding("Granuloma", EXACT, "the node holds calcified granuloma"),
        "bronchiectasis": Finding("Bronchiectasis", EXACT, "a leaf of the term tree"),
        "tuberculosis": Finding("Tuberculosis", EXACT, "the node holds tuberculosis sequelae"),
        "air trapping": Finding("Air Trapping", EXACT, "a leaf of the term tree"),
        "costophrenic angle blunting": Finding("Costophrenic Angle Blunting", EXACT, "a leaf of the term tree"),
        "aortic atheromatosis": Finding("Aortic Atheromatosis", EXACT, "a leaf of the term tree"),
        "aortic elongation": Finding("Aortic Elongation", EXACT, "the node holds every aortic elongation"),
        "hemidiaphragm elevation": Finding("Hemidiaphragm Elevation", EXACT, "a leaf of the term tree"),
        "hilar enlargement": Finding("Hilar Enlargement", EXACT, "the node holds adenopathy and pulmonary artery "
                                     "enlargement, as torchxrayvision's Hilar Enlargement"),
    },
    left_out={
        "thoracic cage deformation": "a parent of scoliosis (broader than the finding)",
        "heart insufficiency": "a diagnosis, not the edema a film shows",
        "electrical device": "devices are not findings of disease",
        "pseudonodule": "not a nodule (a shadow mimicking one)",
        "COPD signs": "signs of a disease, not emphysema itself",
        "fibrotic band": "a scar line, not pulmonary fibrosis",
    },
)
